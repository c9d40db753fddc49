//! Authelia's configuration file filters, applied to each file's text before it is parsed
//! as YAML, in the order given (`X_AUTHELIA_CONFIG_FILTERS` or `--config.experimental.filters`):
//!
//! - `expand-env`: `$NAME` and `${NAME}` are replaced with the environment variable's value
//!   (empty when unset); `$$` is a literal `$`.
//! - `template`: Go-template actions `{{ ... }}`. Portcullis evaluates pipelines of
//!   functions over string and integer literals (`{{ secret "/run/secrets/key" }}`,
//!   `{{- fileContent "k.pem" | nindent 8 }}`, `{{ env "DOMAIN" | default "example.com" }}`),
//!   with `{{-`/`-}}` trimming and `{{/* comments */}}`. Control structures (`if`, `range`,
//!   variables) are refused with an error naming the action.
//!
//! As in Authelia, `env` (and `expand-env`) read no variable whose name starts with
//! `AUTHELIA_` or `X_AUTHELIA_` and ends like a secret (`KEY`, `SECRET`, `PASSWORD`,
//! `TOKEN`, `CERTIFICATE_CHAIN`): those give an empty string.

use base64::Engine;

/// The filter names Authelia accepts.
pub const NAMES: &[&str] = &["template", "expand-env"];

/// Parses a comma-separated filter list; unknown and repeated names are errors.
pub fn parse(list: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for name in list.iter().flat_map(|l| l.split(',')).map(|n| n.trim().to_ascii_lowercase()) {
        if name.is_empty() {
            continue;
        }
        if !NAMES.contains(&name.as_str()) {
            return Err(format!("invalid configuration filter '{name}'; use 'template' or 'expand-env'"));
        }
        if out.contains(&name) {
            return Err(format!("configuration filter '{name}' is listed twice"));
        }
        out.push(name);
    }
    Ok(out)
}

/// Applies `filters` to `text` in order.
pub fn apply(filters: &[String], text: &str) -> Result<String, String> {
    let mut text = text.to_string();
    for filter in filters {
        text = match filter.as_str() {
            "expand-env" => expand_env(&text),
            "template" => template(&text)?,
            other => return Err(format!("invalid configuration filter '{other}'")),
        };
    }
    Ok(text)
}

fn is_secret_env(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    (upper.starts_with("AUTHELIA_") || upper.starts_with("X_AUTHELIA_"))
        && ["KEY", "SECRET", "PASSWORD", "TOKEN", "CERTIFICATE_CHAIN"].iter().any(|s| upper.ends_with(s))
}

fn getenv(name: &str) -> String {
    if name == "$" {
        return "$".into();
    }
    if is_secret_env(name) {
        return String::new();
    }
    std::env::var(name).unwrap_or_default()
}

/// Shell-style expansion with the rules of Go's `os.Expand`.
pub fn expand_env(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut start = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            out.push_str(&text[start..i]);
            let rest = &text[i + 1..];
            let (name, width) = shell_name(rest);
            match (name, width) {
                ("", w) if w > 0 => {}
                ("", _) => out.push('$'),
                (name, _) => out.push_str(&getenv(name)),
            }
            i += width + 1;
            start = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[start.min(text.len())..]);
    out
}

fn special(b: u8) -> bool {
    matches!(b, b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-' | b'0'..=b'9')
}

fn shell_name(s: &str) -> (&str, usize) {
    let b = s.as_bytes();
    if b[0] == b'{' {
        if b.len() > 2 && special(b[1]) && b[2] == b'}' {
            return (&s[1..2], 3);
        }
        for (i, c) in b.iter().enumerate().skip(1) {
            if *c == b'}' {
                return if i == 1 { ("", 2) } else { (&s[1..i], i + 1) };
            }
        }
        return ("", 1);
    }
    if special(b[0]) {
        return (&s[0..1], 1);
    }
    let n = b.iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
    (&s[..n], n)
}

#[derive(Clone, Debug, PartialEq)]
enum V {
    Str(String),
    Int(i64),
    Nil,
}

impl V {
    fn text(&self) -> String {
        match self {
            V::Str(s) => s.clone(),
            V::Int(i) => i.to_string(),
            V::Nil => String::new(),
        }
    }
    fn empty(&self) -> bool {
        matches!(self, V::Nil) || *self == V::Str(String::new()) || *self == V::Int(0)
    }
}

/// Evaluates the template actions of `text`.
pub fn template(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let mut literal = &rest[..open];
        let after = &rest[open + 2..];
        let (after, trim_left) = match after.strip_prefix('-') {
            Some(a) if a.starts_with([' ', '\t', '\n', '\r']) => (a, true),
            _ => (after, false),
        };
        if trim_left {
            literal = literal.trim_end();
        }
        out.push_str(literal);
        let close = after.find("}}").ok_or_else(|| "template filter: an action '{{' is not closed".to_string())?;
        let mut action = &after[..close];
        let mut next = &after[close + 2..];
        if let Some(a) = action.strip_suffix('-')
            && a.ends_with([' ', '\t', '\n', '\r'])
        {
            action = a;
            next = next.trim_start();
        }
        let action = action.trim();
        if !(action.starts_with("/*") && action.ends_with("*/")) {
            out.push_str(&evaluate(action).map_err(|e| format!("template filter: {{{{ {action} }}}}: {e}"))?.text());
        }
        rest = next;
    }
    out.push_str(rest);
    Ok(out)
}

#[derive(Debug, PartialEq)]
enum Token {
    Ident(String),
    Lit(V),
    Pipe,
}

fn tokens(action: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = action.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '|' {
            out.push(Token::Pipe);
            i += 1;
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                let Some(&c) = chars.get(i) else { return Err("a string is not closed".into()) };
                i += 1;
                match c {
                    '"' => break,
                    '\\' => {
                        let Some(&e) = chars.get(i) else { return Err("a string is not closed".into()) };
                        i += 1;
                        s.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            other => other,
                        });
                    }
                    c => s.push(c),
                }
            }
            out.push(Token::Lit(V::Str(s)));
        } else if c == '`' {
            let end = chars[i + 1..].iter().position(|c| *c == '`').ok_or("a string is not closed")?;
            out.push(Token::Lit(V::Str(chars[i + 1..i + 1 + end].iter().collect())));
            i += end + 2;
        } else if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let n = chars[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count() + 1;
            let text: String = chars[i..i + n].iter().collect();
            out.push(Token::Lit(V::Int(text.parse().map_err(|_| format!("'{text}' is not a number"))?)));
            i += n;
        } else if c == '.' && chars.get(i + 1).is_none_or(|c| c.is_whitespace() || *c == '|') {
            out.push(Token::Lit(V::Nil));
            i += 1;
        } else if c.is_alphabetic() || c == '_' {
            let n = chars[i..].iter().take_while(|c| c.is_alphanumeric() || **c == '_').count();
            out.push(Token::Ident(chars[i..i + n].iter().collect()));
            i += n;
        } else {
            return Err(format!("'{c}' is not supported here (only function pipelines over literals are)"));
        }
    }
    Ok(out)
}

fn evaluate(action: &str) -> Result<V, String> {
    let tokens = tokens(action)?;
    if let Some(Token::Ident(word)) = tokens.first()
        && ["if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"]
            .contains(&word.as_str())
    {
        return Err(format!("'{word}' is not supported by Portcullis' template filter (only function pipelines are)"));
    }
    let mut value: Option<V> = None;
    for command in tokens.split(|t| *t == Token::Pipe) {
        let (first, args) = command.split_first().ok_or("empty command in a pipeline")?;
        let mut args: Vec<V> = args
            .iter()
            .map(|t| match t {
                Token::Lit(v) => Ok(v.clone()),
                Token::Ident(name) => Err(format!("'{name}' as an argument is not supported")),
                Token::Pipe => Err("unexpected '|'".to_string()),
            })
            .collect::<Result<_, _>>()?;
        if let Some(previous) = value.take() {
            args.push(previous);
        }
        value = Some(match first {
            Token::Ident(name) => call(name, &args)?,
            Token::Lit(v) if args.is_empty() => v.clone(),
            _ => return Err("a literal cannot take arguments".into()),
        });
    }
    value.ok_or_else(|| "empty action".into())
}

fn call(name: &str, args: &[V]) -> Result<V, String> {
    let text = |i: usize| args.get(i).map(V::text).ok_or_else(|| format!("{name}: missing argument {}", i + 1));
    let int = |i: usize| match args.get(i) {
        Some(V::Int(n)) => usize::try_from(*n).map_err(|_| format!("{name}: argument {} must not be negative", i + 1)),
        _ => Err(format!("{name}: argument {} must be a number", i + 1)),
    };
    let indent = |n: usize, s: &str| {
        let pad = " ".repeat(n);
        format!("{pad}{}", s.replace('\n', &format!("\n{pad}")))
    };
    let read = |path: &str| std::fs::read_to_string(path).map_err(|e| format!("{name}: cannot read '{path}': {e}"));
    let all = |quote: &dyn Fn(&str) -> String| {
        V::Str(args.iter().filter(|a| **a != V::Nil).map(|a| quote(&a.text())).collect::<Vec<_>>().join(" "))
    };
    Ok(match name {
        "env" => V::Str(getenv(&text(0)?)),
        "mustEnv" => {
            let key = text(0)?;
            match std::env::var(&key) {
                Ok(_) if is_secret_env(&key) => V::Str(String::new()),
                Ok(v) => V::Str(v),
                Err(_) if key == "$" => V::Str(key),
                Err(_) => return Err(format!("environment variable '{key}' isn't set")),
            }
        }
        "expandenv" => V::Str(expand_env(&text(0)?)),
        "fileContent" => V::Str(read(&text(0)?)?),
        "secret" => V::Str(read(&text(0)?)?.trim_end_matches('\n').to_string()),
        "indent" => V::Str(indent(int(0)?, &text(1)?)),
        "nindent" => V::Str(format!("\n{}", indent(int(0)?, &text(1)?))),
        "mindent" => {
            let value = text(2)?;
            if value.contains('\n') {
                V::Str(format!("{}\n{}", text(1)?, indent(int(0)?, &value)))
            } else {
                V::Str(value)
            }
        }
        "quote" => all(&|s| format!("{s:?}")),
        "squote" => all(&|s| format!("'{s}'")),
        "mquote" => all(&|s| if s.contains('\n') { s.to_string() } else { format!("\"{s}\"") }),
        "msquote" => all(&|s| if s.contains('\n') { s.to_string() } else { format!("'{s}'") }),
        "trim" => V::Str(text(0)?.trim().to_string()),
        "lower" => V::Str(text(0)?.to_lowercase()),
        "upper" => V::Str(text(0)?.to_uppercase()),
        "trimPrefix" => V::Str(text(1)?.strip_prefix(&text(0)?).map(str::to_string).unwrap_or(text(1)?)),
        "trimSuffix" => V::Str(text(1)?.strip_suffix(&text(0)?).map(str::to_string).unwrap_or(text(1)?)),
        "replace" => V::Str(text(2)?.replace(&text(0)?, &text(1)?)),
        "default" => match args.get(1) {
            Some(v) if !v.empty() => v.clone(),
            _ => args.first().cloned().unwrap_or(V::Nil),
        },
        "b64enc" => V::Str(base64::engine::general_purpose::STANDARD.encode(text(0)?)),
        "b64dec" => {
            let bytes =
                base64::engine::general_purpose::STANDARD.decode(text(0)?).map_err(|e| format!("b64dec: {e}"))?;
            V::Str(String::from_utf8(bytes).map_err(|e| format!("b64dec: {e}"))?)
        }
        other => return Err(format!("function '{other}' is not supported by Portcullis' template filter")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_env_follows_go_rules() {
        // SAFETY: single-threaded test section; variables unique to this test.
        unsafe {
            std::env::set_var("PCF_TEST_HOST", "db.example.com");
            std::env::set_var("AUTHELIA_PCF_TEST_PASSWORD", "hidden");
        }
        assert_eq!(expand_env("a: $PCF_TEST_HOST:${PCF_TEST_HOST}"), "a: db.example.com:db.example.com");
        assert_eq!(expand_env("cost $$5 and $ alone and ${AUTHELIA_PCF_TEST_PASSWORD}"), "cost $5 and $ alone and ");
        assert_eq!(expand_env("${unclosed"), "unclosed");
        assert_eq!(expand_env("end$"), "end$");
    }

    #[test]
    fn template_pipelines() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "line1\nline2\n").unwrap();
        // SAFETY: as above.
        unsafe { std::env::set_var("PCF_TEST_DOMAIN", "example.org") };
        let text = format!(
            "domain: '{{{{ env \"PCF_TEST_DOMAIN\" }}}}'\nother: {{{{ env \"PCF_UNSET\" | default \"x.com\" | squote }}}}\n\
             key: |\n{{{{- secret \"{0}\" | nindent 2 }}}}\n{{{{/* a comment */}}}}tail",
            key.display()
        );
        assert_eq!(template(&text).unwrap(), "domain: 'example.org'\nother: 'x.com'\nkey: |\n  line1\n  line2\ntail");
        assert!(template("{{ if true }}x{{ end }}").unwrap_err().contains("'if' is not supported"));
        assert!(template("{{ nosuch 1 }}").unwrap_err().contains("nosuch"));
        assert!(template("{{ mustEnv \"PCF_DEFINITELY_UNSET\" }}").is_err());
    }

    #[test]
    fn filter_lists() {
        assert_eq!(parse(&["template,expand-env".into()]).unwrap(), ["template", "expand-env"]);
        assert!(parse(&["template,template".into()]).is_err());
        assert!(parse(&["jinja".into()]).is_err());
    }
}
