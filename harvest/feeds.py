"""Licences stated inside podcast feeds.

yt-dlp turns an RSS feed into a playlist of its enclosures but reads no
licence, so every episode would fail the Creative Commons gate. Feeds can say
it themselves: ``<creativeCommons:license>`` (the RSS module), ``<dc:rights>``
or ``<copyright>``, per item or for the whole channel. harvest reads the feed
once more (one request per feed per run) and hands each episode the licence
the feed states for it; the gate then judges it like a video's licence.

Feeds come from anywhere, so they are parsed with ``defusedxml``: entity
expansion ("billion laughs"), external entities and DTD tricks are refused
instead of being resolved by the standard library's parser.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring
from yt_dlp.utils import unsmuggle_url

MAX_FEED_BYTES = 32 * 1024 * 1024  # larger "feeds" are not parsed for licences
LICENSE_TAGS = (
    "{http://backend.userland.com/creativeCommonsRssModule}license",
    "{http://purl.org/dc/elements/1.1/}rights",
    "copyright",
)


@dataclass(frozen=True)
class FeedLicenses:
    """The channel's licence and each enclosure's (item-level wins)."""

    channel: str = ""
    by_enclosure: dict[str, str] = field(default_factory=dict)  # enclosure URL -> licence text

    def license_for(self, enclosure_url: str) -> str:
        return self.by_enclosure.get(unsmuggle_url(enclosure_url)[0], "") or self.channel


def _stated_license(element: ElementTree.Element) -> str:
    for tag in LICENSE_TAGS:
        child = element.find(tag)
        if child is not None and (child.text or "").strip():
            return " ".join(child.text.split())
    return ""


def parse_feed_licenses(data: bytes) -> FeedLicenses | None:
    """Licences an RSS document states; None if ``data`` is not an RSS feed."""
    if len(data) > MAX_FEED_BYTES or b"<rss" not in data[:4096]:
        return None
    try:
        root = safe_fromstring(data)  # entities and external references refused
    except (ElementTree.ParseError, DefusedXmlException):
        return None
    channel = root.find("channel")
    if channel is None:
        return None
    by_enclosure = {}
    for item in channel.findall("item"):
        enclosure = item.find("enclosure")
        stated = _stated_license(item)
        if enclosure is not None and enclosure.get("url") and stated:
            by_enclosure[enclosure.get("url")] = stated
    return FeedLicenses(channel=_stated_license(channel), by_enclosure=by_enclosure)
