"""Runway's rules for a media URI, wherever a request carries one (promptImage, videoUri, promptVideo,
a reference's or a keyframe's uri...), as runway-api.md states them: the SDK's types say only `str`.

A URI is one of:

- an HTTPS URL with a public domain name: not an IP address in any of the spellings a URL parser
  reads as one (``127.1``, ``0177.0.0.1``, ``2130706433``, ``0x7f.1``, ``[::1]``, percent-encoded
  or full-width digits), not localhost (nor ``localhost.``, nor a name under it), and at most 2,048
  characters; Runway fetches it, and could reach only itself at such an address;
- a ``data:`` URI, base64, of a type Runway takes for that kind of media, at most 5 MiB long;
- a ``runway://`` URI that this simulator's POST /v1/uploads handed out and whose file has arrived,
  within its 24 hours (uploads.py): the caller checks that one.

The simulator never fetches a URL nor decodes a file: whether one is really an image is Runway's
business at run time (a FAILED task with ``ASSET.INVALID``), which ``[sim:fail=ASSET.INVALID]`` plays.
"""

import base64
import binascii
import re
import unicodedata
from urllib.parse import unquote, urlsplit

URL_MAX_LENGTH = 2048
DATA_URI_MAX_LENGTH = 5 * 1024 * 1024
DATA_TYPES = {
    "image": ("image/jpeg", "image/png", "image/webp"),
    "video": ("video/mp4", "video/quicktime", "video/webm"),
    "audio": ("audio/mpeg", "audio/mp3", "audio/wav", "audio/x-wav", "audio/ogg", "audio/aac", "audio/flac"),
}
UPLOAD_SCHEME = "runway://"

# A host a URL parser reads as an IPv4 address: its last label (after any trailing dot) is a number,
# decimal, octal or hex (WHATWG URL's "ends in a number"); a name whose last label is a number is
# not a domain name either way.
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")
# Characters no valid URL carries as they are, and that parsers read differently (a backslash is a
# slash to browsers and to Node, not to Python).
_NOT_IN_URLS = re.compile(r"[\x00-\x20\x7f\\]")


def uri_problem(uri: str, kind: str) -> str | None:
    """What is wrong with `uri` as a `kind` ("image", "video" or "audio") input; None if nothing is.

    A runway:// URI passes here: only the store of uploads can tell.
    """
    lowered = uri[:16].lower()
    if lowered.startswith("https://"):
        return url_problem(uri)
    if lowered.startswith("data:"):
        return data_uri_problem(uri, kind)
    if lowered.startswith(UPLOAD_SCHEME):
        return None
    return f"Expected an HTTPS URL, a data:{kind}/... URI or a runway:// upload URI."


def url_problem(url: str) -> str | None:
    if len(url) > URL_MAX_LENGTH:
        return f"A URL may be at most {URL_MAX_LENGTH} characters."
    if _NOT_IN_URLS.search(url):
        return "Invalid URL."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not one
    except ValueError:
        return "Invalid URL."
    return _host_problem(parts.hostname or "")


def _host_problem(raw_host: str) -> str | None:
    host = _normalized_host(raw_host)
    if not host:
        return "The URL has no host."
    if ":" in host or _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
        return "The URL must use a domain name, not an IP address."
    if host == "localhost" or host.endswith(".localhost"):
        return "The URL must not point at localhost: Runway could only reach itself there."
    if "." not in host:
        return "The URL must use a public domain name: Runway cannot fetch it otherwise."
    return None


def _normalized_host(host: str) -> str:
    """The host as a URL parser compares it: percent-decoded, full-width forms folded, lower case,
    without the trailing dot of a fully qualified name."""
    host = unicodedata.normalize("NFKC", unquote(host)).lower()
    for dot in ("\u3002", "\uff0e", "\uff61"):  # ideographic and full-width full stops
        host = host.replace(dot, ".")
    return host.rstrip(".")


def data_uri_problem(uri: str, kind: str) -> str | None:
    types = DATA_TYPES[kind]
    header, comma, payload = uri[len("data:") :].partition(",")
    mime, *parameters = header.split(";")
    if not comma or parameters[-1:] != ["base64"] or mime.lower() not in types:
        return f"A data URI here must be base64 of one of: {', '.join(types)}."
    if len(uri) > DATA_URI_MAX_LENGTH:
        return f"A data URI may be at most {DATA_URI_MAX_LENGTH} characters."
    if not payload:
        return "A data URI must not be empty."
    try:
        base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return "A data URI's content must be valid base64."
    return None
