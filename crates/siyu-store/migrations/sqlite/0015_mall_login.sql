-- Mall login: the mini program's AppSecret (sealed) for code2Session, and the WeChat API
-- origin it is called at (the sandbox in the demo).
ALTER TABLE pay_settings ADD COLUMN app_secret_sealed TEXT;
ALTER TABLE pay_settings ADD COLUMN login_base_url TEXT;
