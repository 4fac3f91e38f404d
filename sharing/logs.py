"""Keeps share tokens out of Django's request log ("Not Found: /s/<token>/", "Too Many Requests: …")."""

import logging
import re

_SHARE_PATH = re.compile(r"/s/([^/\s]{6})[^/\s]*")


def redact(text: str) -> str:
    """`/s/<token>` with only the token's visible prefix left (what its owner sees too)."""
    return _SHARE_PATH.sub(r"/s/\1…", text)


class ShareTokenFilter(logging.Filter):
    """Rewrites a record that names a share page's path, and drops its request (which the admins'
    error mail would print whole); lets every record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
            if hasattr(record, "request"):
                record.request = None
        return True
