"""A network namespace joined to this host by a veth pair, made (and removed) by a test: root and ``ip``/``tc``
needed. Programs run inside with ``ip netns exec NAME ...``; ``tc`` rules on either end shape what crosses."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Namespace:
    name: str
    host_if: str
    ns_if: str
    host_ip: str   # this host's end of the link: what a program in the namespace connects to
    ns_ip: str

    def tc(self, *args: str, inside: bool) -> None:
        """A ``tc`` command on the namespace's end (``inside``) or on this host's end of the link."""
        prefix = ["ip", "netns", "exec", self.name] if inside else []
        subprocess.run([*prefix, "tc", *args], check=True, capture_output=True, timeout=20)


_made = itertools.count()


def can_make_namespaces() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None and shutil.which("tc") is not None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=20)


@contextmanager
def veth_namespace(prefix: str) -> Iterator[Namespace]:
    """A fresh namespace ``<prefix>-<pid>`` on a /24 of its own, removed (with its veth pair) on exit."""
    pid, n = os.getpid(), next(_made)
    tag = f"{pid % 10000}{n % 10}"  # fresh names each time: a deleted veth pair may linger a moment
    net = f"10.{150 + (pid + n) % 50}.{(pid + 7 * n) % 250}"
    ns = Namespace(f"{prefix}-{tag}", f"{prefix[:3]}{tag}h", f"{prefix[:3]}{tag}n", f"{net}.1", f"{net}.2")
    _ip("netns", "add", ns.name)
    try:
        _ip("link", "add", ns.host_if, "type", "veth", "peer", "name", ns.ns_if)
        _ip("link", "set", ns.ns_if, "netns", ns.name)
        _ip("addr", "add", f"{ns.host_ip}/24", "dev", ns.host_if)
        _ip("link", "set", ns.host_if, "up")
        _ip("netns", "exec", ns.name, "ip", "addr", "add", f"{ns.ns_ip}/24", "dev", ns.ns_if)
        _ip("netns", "exec", ns.name, "ip", "link", "set", ns.ns_if, "up")
        _ip("netns", "exec", ns.name, "ip", "link", "set", "lo", "up")
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns.name], capture_output=True, timeout=20)  # takes the veth pair along


def drop_some_udp(ns: Namespace, *, inside: bool) -> str:
    """Lose about 5 % of the UDP datagrams leaving one end of the link; returns how. ``tc netem loss 5%`` where
    the kernel has netem; else (no sch_netem, no tc actions, as on this CI's kernel) a u32 filter sends the
    RTP/RTCP datagrams (first payload byte 0b10xxxxxx) whose byte 48 of UDP payload (SRTP ciphertext:
    effectively random) has one of 3 values in its top 6 bits (3/64, 4.7 %) to an htb class of 8 bit/s with a
    one-packet queue, which drops them. STUN and DTLS are left alone: a retransmitted ICE check or handshake
    flight repeats the same bytes, so a filter on content would drop every retry of the same one (seen: ICE
    never completed), where random loss would not."""
    dev = ns.ns_if if inside else ns.host_if
    try:
        ns.tc("qdisc", "add", "dev", dev, "root", "netem", "loss", "5%", inside=inside)
        return "netem loss 5%"
    except subprocess.CalledProcessError:
        pass
    ns.tc("qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "1", "r2q", "100", inside=inside)
    ns.tc("class", "add", "dev", dev, "parent", "1:", "classid", "1:1", "htb", "rate", "1gbit", inside=inside)
    ns.tc("class", "add", "dev", dev, "parent", "1:", "classid", "1:2", "htb", "rate", "8bit", "ceil", "8bit",
          "quantum", "1500", inside=inside)
    ns.tc("qdisc", "add", "dev", dev, "parent", "1:2", "handle", "20:", "pfifo", "limit", "1", inside=inside)
    for value in ("0x0000", "0x0400", "0x0800"):
        ns.tc("filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio", "1", "u32", "match", "ip",
              "protocol", "17", "0xff", "match", "u8", "0x80", "0xc0", "at", "28", "match", "u16", value, "0xfc00",
              "at", "76", "flowid", "1:2", inside=inside)
    return "u32 filter into a dropping htb class, 4.7% of RTP/RTCP"


def dropped(ns: Namespace, *, inside: bool) -> int:
    """Packets the qdiscs on that end dropped so far."""
    prefix = ["ip", "netns", "exec", ns.name] if inside else []
    shown = subprocess.run([*prefix, "tc", "-s", "qdisc", "show", "dev", ns.ns_if if inside else ns.host_if],
                           capture_output=True, text=True, timeout=20).stdout
    return sum(int(n) for n in re.findall(r"dropped (\d+)", shown))
