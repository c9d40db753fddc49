DROP TABLE device_links;
