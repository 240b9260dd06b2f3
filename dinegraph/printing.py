"""Kitchen tickets for receipt printers: plain text laid out in a printer's columns, and the
same as ESC/POS bytes.

Widths are counted in columns, as the printer counts them: a CJK (wide or full-width)
character takes two, a combining mark none, anything else one. A 58 mm printer prints 32
columns, an 80 mm one 48 in its standard font.

The ESC/POS encoder is the handful of commands a ticket needs (python-escpos would bring
image libraries for none of them): initialise, bold, double height, feed, cut; text goes in
GB18030, which the Chinese printers' character mode reads (FS & selects it).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import tzinfo
from enum import IntEnum

from dinegraph.domain.kitchen import Ticket, short_number
from dinegraph.domain.orders import spec_text


class PaperWidth(IntEnum):
    """Columns per line of a receipt printer's paper."""

    MM58 = 32
    MM80 = 48


_CHANNELS = {"DINE_IN": "堂食", "PICKUP": "自取", "DELIVERY": "外卖", "RETAIL": "零售"}
_SOURCES = {
    "MINI_PROGRAM": "小程序",
    "POS": "收银台",
    "MEITUAN": "美团",
    "ELEME": "饿了么",
    "DOUYIN": "抖音",
}


def char_width(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def text_width(text: str) -> int:
    return sum(char_width(c) for c in text)


def wrap(text: str, columns: int) -> list[str]:
    """``text`` cut into lines of at most ``columns`` columns (a wide character is never
    split); an empty text is one empty line."""
    lines: list[str] = []
    current, used = "", 0
    for char in text.replace("\t", " "):
        if char == "\n":
            lines.append(current)
            current, used = "", 0
            continue
        width = char_width(char)
        if used + width > columns and current:
            lines.append(current)
            current, used = "", 0
        current += char
        used += width
    lines.append(current)
    return lines


def two_sides(left: str, right: str, columns: int) -> list[str]:
    """``left`` wrapped, with ``right`` at the end of its last line (or on a line of its own
    when it does not fit there)."""
    room = columns - text_width(right) - 1
    lines = wrap(left, room if room >= columns // 2 else columns)
    gap = columns - text_width(lines[-1]) - text_width(right)
    if gap >= 1:
        lines[-1] = lines[-1] + " " * gap + right
    else:
        lines.append(" " * max(columns - text_width(right), 0) + right)
    return lines


def center(text: str, columns: int) -> str:
    pad = max(columns - text_width(text), 0) // 2
    return " " * pad + text


@dataclass(frozen=True, slots=True)
class Row:
    text: str
    emphasis: bool = False  # bold and double height: the station and the number


def ticket_rows(ticket: Ticket, columns: int, time_zone: tzinfo) -> list[Row]:
    """The ticket, line by line, each at most ``columns`` wide (emphasised rows are printed
    at double height, not double width, so they take the same columns)."""
    t = ticket.ticket
    rule = "-" * columns
    local = t.accepted_at.astimezone(time_zone)
    head = f"{t.station_name}  {short_number(t)}"
    rows = [Row(line, emphasis=True) for line in wrap(head, columns)]
    if ticket.print_count > 1:
        rows.append(Row(f"** 重打 第{ticket.print_count - 1}次 **"))
    channel = _CHANNELS.get(t.channel.value, t.channel.value)
    source = _SOURCES.get(t.source.value, t.source.value)
    when = local.strftime("%m-%d %H:%M")
    rows += [Row(line) for line in two_sides(f"{channel} {source}", when, columns)]
    rows += [Row(line) for line in wrap(f"单号 {t.order_number}", columns)]
    rows.append(Row(rule))
    for item in t.items:
        rows += [Row(line) for line in two_sides(item.name, f"x{item.quantity}", columns)]
        if item.specs:
            rows += [Row("  " + line) for line in wrap(spec_text(item.specs), columns - 2)]
        if item.combo:
            rows += [Row("  " + line) for line in wrap(f"[套餐] {item.combo}", columns - 2)]
        if item.note:
            rows += [Row("  " + line) for line in wrap(f"[备注] {item.note}", columns - 2)]
    rows.append(Row(rule))
    if t.note:
        rows += [Row(line, emphasis=True) for line in wrap(f"备注: {t.note}", columns)]
    return rows


def ticket_text(ticket: Ticket, columns: int, time_zone: tzinfo) -> str:
    return "\n".join(row.text for row in ticket_rows(ticket, columns, time_zone))


# --- ESC/POS ---------------------------------------------------------------------------

ESC, GS, FS, LF = b"\x1b", b"\x1d", b"\x1c", b"\n"
INITIALISE = ESC + b"@"
CHINESE_MODE = FS + b"&"  # two-byte (GB18030) characters from here on
BOLD_ON, BOLD_OFF = ESC + b"E\x01", ESC + b"E\x00"
DOUBLE_HEIGHT, NORMAL_SIZE = GS + b"!\x01", GS + b"!\x00"


def feed(lines: int) -> bytes:
    return ESC + b"d" + bytes([max(0, min(lines, 255))])


CUT = GS + b"V\x42\x00"  # feed to the cutter, then a partial cut


def escpos(ticket: Ticket, columns: int, time_zone: tzinfo) -> bytes:
    """The ticket as ESC/POS: initialise, Chinese mode, the rows (emphasised ones bold and
    double height), a feed and a cut."""
    out = bytearray(INITIALISE + CHINESE_MODE)
    for row in ticket_rows(ticket, columns, time_zone):
        text = row.text.encode("gb18030", errors="replace")
        if row.emphasis:
            out += BOLD_ON + DOUBLE_HEIGHT + text + LF + NORMAL_SIZE + BOLD_OFF
        else:
            out += text + LF
    out += feed(3) + CUT
    return bytes(out)
