"""Every way a URL can spell an address, as hypothesis strategies: Unicode digits and dots that
IDNA/UTS 46 maps to ASCII ones, integer, hex and octal forms, short forms, trailing dots, and
IPv6 forms carrying an IPv4 address (mapped, compatible, translated, NAT64, 6to4).

The tables are built from ``unicodedata``, not written out, so every code point Python's
Unicode database maps onto a digit or a dot is in the draw."""

import ipaddress
import sys
import unicodedata

from hypothesis import strategies as st

ASCII_DIGITS = "0123456789"


def _equivalents(wanted: set[str]) -> dict[str, list[str]]:
    """For each string in ``wanted``, the code points whose NFKC form is that string."""
    found: dict[str, list[str]] = {text: [] for text in wanted}
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if 0xD800 <= code <= 0xDFFF:
            continue
        normal = unicodedata.normalize("NFKC", char)
        if normal in found and normal != char:
            found[normal].append(char)
    return found


_DIGIT_FORMS = _equivalents(set(ASCII_DIGITS))
# U+3002 IDEOGRAPHIC FULL STOP and U+FF61 HALFWIDTH IDEOGRAPHIC FULL STOP are dots to UTS 46,
# not to NFKC; U+FF0E FULLWIDTH FULL STOP is one to both.
DOTS = [".", "\u3002", "\uff0e", "\uff61"]
# Code points that stand for two digits at once (CIRCLED NUMBER TEN and the like).
_NUMBER_FORMS = {
    text: chars for text, chars in _equivalents({str(n) for n in range(10, 51)}).items() if chars
}


@st.composite
def unicode_number(draw: st.DrawFn, number: int) -> str:
    """``number`` in decimal, each digit (or pair of digits) drawn from its Unicode forms."""
    text = str(number)
    out = []
    i = 0
    while i < len(text):
        pair = text[i : i + 2]
        if len(pair) == 2 and pair in _NUMBER_FORMS and draw(st.booleans()):
            out.append(draw(st.sampled_from(_NUMBER_FORMS[pair])))
            i += 2
            continue
        digit = text[i]
        out.append(draw(st.sampled_from([digit, *_DIGIT_FORMS[digit]])))
        i += 1
    return "".join(out)


@st.composite
def ipv4_spelling(draw: st.DrawFn, address: ipaddress.IPv4Address) -> str:
    """A host that one parser or another reads as ``address``."""
    octets = list(address.packed)
    form = draw(st.sampled_from(["unicode", "integer", "hex", "octal", "short", "trailing"]))
    if form == "unicode":
        parts = [draw(unicode_number(octet)) for octet in octets]
        dots = [draw(st.sampled_from(DOTS)) for _ in range(3)]
        host = parts[0] + "".join(dot + part for dot, part in zip(dots, parts[1:], strict=True))
    elif form == "integer":
        host = str(int(address))
    elif form == "hex":
        host = draw(st.sampled_from([hex(int(address)), ".".join(hex(o) for o in octets)]))
    elif form == "octal":
        host = ".".join(f"0{o:o}" if o else "0" for o in octets)
    elif form == "short":  # a.b.c with c filling 16 bits, a.b with b filling 24
        if draw(st.booleans()):
            host = f"{octets[0]}.{octets[1]}.{octets[2] * 256 + octets[3]}"
        else:
            host = f"{octets[0]}.{int.from_bytes(bytes(octets[1:]), 'big')}"
    else:
        host = f"{address}."
    if draw(st.booleans()):
        host = host.upper()
    return host


def _ipv6_forms(address: ipaddress.IPv4Address) -> list[str]:
    value = int(address)
    return [
        f"::ffff:{address}",
        str(ipaddress.IPv6Address((0xFFFF << 32) | value)),  # mapped, in hex
        str(ipaddress.IPv6Address(value)),  # IPv4-compatible
        str(ipaddress.IPv6Address((0xFFFF << 48) | value)),  # IPv4-translated (SIIT)
        str(ipaddress.IPv6Address((0x64FF9B << 96) | value)),  # NAT64
        str(ipaddress.IPv6Address((0x2002 << 112) | (value << 80))),  # 6to4
        ipaddress.IPv6Address((0xFFFF << 32) | value).exploded,
    ]


@st.composite
def host_spelling(draw: st.DrawFn, address: ipaddress.IPv4Address) -> str:
    """``address`` as the host part of a URL: an IPv4 spelling, or an IPv6 form that carries
    it, in brackets."""
    if draw(st.booleans()):
        return draw(ipv4_spelling(address))
    form = draw(st.sampled_from(_ipv6_forms(address)))
    return f"[{form.upper() if draw(st.booleans()) else form}]"


REFUSED_V4 = st.one_of(
    st.ip_addresses(v=4, network="127.0.0.0/8"),
    st.ip_addresses(v=4, network="10.0.0.0/8"),
    st.ip_addresses(v=4, network="172.16.0.0/12"),
    st.ip_addresses(v=4, network="192.168.0.0/16"),
    st.ip_addresses(v=4, network="169.254.0.0/16"),
    st.ip_addresses(v=4, network="100.64.0.0/10"),
    st.just(ipaddress.IPv4Address("0.0.0.0")),
)
# The only addresses a test may connect to: what reaches a listener on 127.0.0.1.
LOOPBACK_V4 = st.sampled_from(
    [ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv4Address("0.0.0.0")]
)
