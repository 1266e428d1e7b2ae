"""The three core stages (account, fingerprint, cluster); `app.engine` chains them for replay."""
