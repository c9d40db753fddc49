-- Asks Portcullis whether a request may pass (ForwardAuth protocol) using HAProxy's own
-- HTTP client (HAProxy 2.5 or later), and leaves the answer in transaction variables:
--   txn.portcullis_status    the status Portcullis answered (0 when it could not be asked)
--   txn.portcullis_location  where to send the browser to log in (302/303)
--   txn.portcullis_authenticate  the Basic challenge (401)
--   txn.remote_user, txn.remote_groups, txn.remote_name, txn.remote_email  on 200
-- Use: http-request lua.portcullis <Portcullis forward-auth URL>

local forwarded = { "cookie", "authorization", "proxy-authorization", "accept", "x-requested-with", "user-agent" }
local identity = { "remote-user", "remote-groups", "remote-name", "remote-email" }

local function first(headers, name)
    local values = headers[name]
    if values == nil then
        return nil
    end
    if type(values) == "table" then
        return values[0] or values[1]
    end
    return values
end

core.register_action("portcullis", { "http-req" }, function(txn, url)
    local request = txn.http:req_get_headers()
    local headers = {
        ["x-forwarded-method"] = { txn.sf:method() },
        ["x-forwarded-proto"] = { txn.sf:ssl_fc() and "https" or "http" },
        ["x-forwarded-host"] = { txn.sf:req_hdr("host") },
        ["x-forwarded-uri"] = { txn.sf:pathq() },
        -- The connection's own address: whatever the client put in X-Forwarded-For is ignored.
        ["x-forwarded-for"] = { txn.sf:src() },
    }
    for _, name in ipairs(forwarded) do
        local value = first(request, name)
        if value ~= nil then
            headers[name] = { value }
        end
    end

    txn:set_var("txn.portcullis_status", 0)
    local ok, response = pcall(function()
        return core.httpclient():get({ url = url, headers = headers, timeout = 5000 })
    end)
    if not ok or response == nil or response.status == nil then
        core.Alert("portcullis: authorization request failed: " .. tostring(response))
        return
    end
    txn:set_var("txn.portcullis_status", response.status)
    local answer = response.headers or {}
    txn:set_var("txn.portcullis_location", first(answer, "location") or "")
    txn:set_var("txn.portcullis_authenticate", first(answer, "www-authenticate") or "")
    if response.status == 200 then
        for _, name in ipairs(identity) do
            txn:set_var("txn." .. name:gsub("-", "_"), first(answer, name) or "")
        end
    end
end, 1)
