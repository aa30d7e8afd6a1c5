"""Server.xml's ``Managers/Subscriptions`` and ``Managers/Metrics``: read as the API's bodies, refused at
load with the reason, shown by ``kiln config check`` without secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.config import ConfigLoadError, load_server_xml_text
from kiln.config.check import summary

BASE = """<?xml version="1.0"?><Server version="8"><Name>K</Name><Type>origin</Type>
<Bind><Managers><API><Port>8081</Port></API></Managers></Bind>
<Managers><API><AccessToken>t</AccessToken></API>{extra}</Managers></Server>"""

GOOD = """<Metrics><Auth>false</Auth></Metrics><Subscriptions>
  <Subscription><Id>audit</Id><Url>http://u:pw@hooks.test/k?token=abc</Url><SecretKey>s3cr3t</SecretKey>
    <Entity>push:</Entity><Types>PushStateChanged, PushCreated</Types><From>1</From></Subscription>
  <Subscription><Id>all</Id><Url>https://hooks.test/all</Url></Subscription>
</Subscriptions>"""


def test_subscriptions_and_metrics_auth_are_read(tmp_path: Path) -> None:
    config = load_server_xml_text(BASE.format(extra=GOOD), tmp_path)
    assert config.metrics_auth is False
    assert config.subscriptions == [
        {"id": "audit", "url": "http://u:pw@hooks.test/k?token=abc", "secretKey": "s3cr3t",
         "filter": {"entity": "push:", "types": ["PushStateChanged", "PushCreated"]}, "from": 1},
        {"id": "all", "url": "https://hooks.test/all", "filter": {"entity": "", "types": []}}]
    text = summary(config)
    assert "without a token (Managers/Metrics/Auth false)" in text
    assert "subscription audit: http://u:***@hooks.test/k?token=*** (entity 'push:*', " \
           "PushStateChanged,PushCreated, signed)" in text
    assert "s3cr3t" not in text and "pw@" not in text
    assert load_server_xml_text(BASE.format(extra=""), tmp_path).metrics_auth is True


@pytest.mark.parametrize("extra, reason", [
    ("<Subscriptions><Subscription><Id>a</Id><Url>ftp://x/</Url></Subscription></Subscriptions>",
     "Subscription url is required"),
    ("<Subscriptions><Subscription><Id>a</Id><Url>http://x/</Url><From>soon</From></Subscription></Subscriptions>",
     "From: not an integer"),
    ("<Subscriptions><Subscription><Id>a</Id><Url>http://x/</Url></Subscription>"
     "<Subscription><Id>a</Id><Url>http://y/</Url></Subscription></Subscriptions>", "duplicate subscription id 'a'"),
])
def test_a_bad_subscription_stops_the_load_with_the_reason(tmp_path: Path, extra: str, reason: str) -> None:
    with pytest.raises(ConfigLoadError) as caught:
        load_server_xml_text(BASE.format(extra=extra), tmp_path)
    assert reason in str(caught.value)
