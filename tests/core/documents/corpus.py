"""Real files for the document tests, built with the real libraries (pypdf, python-docx) or by hand
where the point is that they are broken (a zip bomb, a damaged PDF).

Each builder writes one file and returns its path. Nothing here is a stand-in: the extractor reads
these files as it would read a person's.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path

import docx
from pypdf import PdfWriter
from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, NameObject, NumberObject

__all__ = [
    "docx_bomb",
    "docx_file",
    "gzip_bomb",
    "image_pdf",
    "many_pages_pdf",
    "pdf",
    "slow_pdf",
]


def _font() -> DictionaryObject:
    return DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _text_page(writer: PdfWriter, lines: list[str]) -> None:
    page = writer.add_blank_page(612, 792)
    ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
    for line in lines:
        ops.append(f"({_escape(line)}) Tj T*")
    ops.append("ET")
    stream = DecodedStreamObject()
    stream.set_data("\n".join(ops).encode("latin-1"))
    page[NameObject("/Contents")] = writer._add_object(stream)
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(_font())})}
    )


def pdf(path: Path, pages: list[str], *, user_password: str | None = None, owner_password: str | None = None) -> Path:
    """A PDF with one page per string (lines split on newlines), optionally encrypted (RC4-128,
    which pypdf writes without a crypto library)."""
    writer = PdfWriter()
    for text in pages:
        _text_page(writer, text.split("\n"))
    if user_password is not None or owner_password is not None:
        writer.encrypt(user_password or "", owner_password, algorithm="RC4-128")
    with open(path, "wb") as f:
        writer.write(f)
    return path


def many_pages_pdf(path: Path, count: int) -> Path:
    """A PDF of `count` pages that share one content stream and one font (cheap to write: the
    2,000-page file is about 200 KB), each page still parsed on its own by a reader."""
    writer = PdfWriter()
    stream = DecodedStreamObject()
    stream.set_data(b"BT /F1 12 Tf 72 720 Td (A page of a very long report, with some words on it.) Tj ET")
    contents = writer._add_object(stream)
    resources = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(_font())})}
    )
    for _ in range(count):
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Contents")] = contents
        page[NameObject("/Resources")] = resources
    with open(path, "wb") as f:
        writer.write(f)
    return path


def slow_pdf(path: Path, operations: int) -> Path:
    """One page that shows a word `operations` times: pypdf takes about 65 µs per operation here
    (15,000 ≈ 1 s), all of it inside one extract_text call that no soft deadline can cut short."""
    writer = PdfWriter()
    page = writer.add_blank_page(612, 792)
    stream = DecodedStreamObject()
    stream.set_data(b"BT /F1 12 Tf 72 720 Td " + b"(word) Tj 1 0 Td " * operations + b"ET")
    page[NameObject("/Contents")] = writer._add_object(stream)
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(_font())})}
    )
    with open(path, "wb") as f:
        writer.write(f)
    return path


def image_pdf(path: Path, pages: int = 2) -> Path:
    """A scan: each page paints a grey 8×8 image and holds no text at all."""
    writer = PdfWriter()
    image = DecodedStreamObject()
    image.set_data(bytes(range(0, 256, 4)))
    image.update(
        {
            NameObject("/Type"): NameObject("/XObject"),
            NameObject("/Subtype"): NameObject("/Image"),
            NameObject("/Width"): NumberObject(8),
            NameObject("/Height"): NumberObject(8),
            NameObject("/ColorSpace"): NameObject("/DeviceGray"),
            NameObject("/BitsPerComponent"): NumberObject(8),
        }
    )
    ref = writer._add_object(image)
    for _ in range(pages):
        page = writer.add_blank_page(612, 792)
        draw = DecodedStreamObject()
        draw.set_data(b"q 500 0 0 700 50 50 cm /Im0 Do Q")
        page[NameObject("/Contents")] = writer._add_object(draw)
        page[NameObject("/Resources")] = DictionaryObject(
            {
                NameObject("/XObject"): DictionaryObject({NameObject("/Im0"): ref}),
                NameObject("/ProcSet"): ArrayObject([NameObject("/PDF"), NameObject("/ImageB")]),
            }
        )
    with open(path, "wb") as f:
        writer.write(f)
    return path


def docx_file(path: Path, blocks: list[tuple[str, str]]) -> Path:
    """A Word document from (style, text) pairs: "h1".."h3" headings, "p" paragraphs, "table"
    (rows split on newlines, cells on "|")."""
    document = docx.Document()
    for style, text in blocks:
        if style.startswith("h"):
            document.add_heading(text, int(style[1:]))
        elif style == "table":
            rows = [r.split("|") for r in text.split("\n")]
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            for i, row in enumerate(rows):
                for j, cell in enumerate(row):
                    table.cell(i, j).text = cell
        else:
            document.add_paragraph(text)
    document.save(str(path))
    return path


def _gf2_times(mat: list[int], vec: int) -> int:
    total, i = 0, 0
    while vec:
        if vec & 1:
            total ^= mat[i]
        vec >>= 1
        i += 1
    return total


def _crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """zlib's crc32_combine (not exposed by Python's zlib): the CRC-32 of A+B from those of A and B."""
    if len2 == 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]
    even = [_gf2_times(odd, odd[n]) for n in range(32)]
    odd = [_gf2_times(even, even[n]) for n in range(32)]
    while True:
        even = [_gf2_times(odd, odd[n]) for n in range(32)]
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = [_gf2_times(even, even[n]) for n in range(32)]
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def _bomb_stream(head: bytes, block: bytes, times: int) -> tuple[bytes, int, int]:
    """A raw deflate stream of head + block × times, its CRC-32 and its size, built in milliseconds
    however large: after a full flush the compressor starts afresh, so every block compresses to the
    same bytes, and the CRC of the repeats is combined by doubling rather than computed over them."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head_piece = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    piece = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    assert piece == c.compress(block) + c.flush(zlib.Z_FULL_FLUSH), "the compressor kept state across a flush"
    stream = head_piece + piece * times + c.flush()
    crc, power_crc, power_len, n = zlib.crc32(head), zlib.crc32(block), len(block), times
    while n:
        if n & 1:
            crc = _crc32_combine(crc, power_crc, power_len)
        power_crc, power_len = _crc32_combine(power_crc, power_crc, power_len), power_len * 2
        n >>= 1
    return stream, crc, len(head) + len(block) * times


def _zip(path: Path, members: list[tuple[str, bytes, int, int, int]]) -> None:
    """Write a zip by hand from (name, deflated bytes, crc, size, method) so a member's declared size
    is whatever the test says (zipfile cannot store data compressed elsewhere)."""
    out = bytearray()
    central = bytearray()
    for name, data, crc, size, method in members:
        offset = len(out)
        raw = name.encode()
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), size, len(raw), 0)
        out += raw + data
        fields = (0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(data), size, len(raw), 0, 0, 0, 0, 0, offset)
        central += struct.pack("<IHHHHHHIIIHHHHHII", *fields)
        central += raw
    start = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), start, 0)
    path.write_bytes(bytes(out))


def docx_bomb(path: Path, expands_to: int) -> Path:
    """A real DOCX whose word/document.xml inflates to about `expands_to` bytes (a zip bomb): the
    parts of a python-docx document, with document.xml replaced by one endless paragraph."""
    plain = path.with_name(path.stem + "-seed.docx")
    docx_file(plain, [("p", "seed")])
    members: list[tuple[str, bytes, int, int, int]] = []
    with zipfile.ZipFile(plain) as z:
        for info in z.infolist():
            data = z.read(info)
            if info.filename == "word/document.xml":
                head = data[: data.index(b"<w:t>") + len(b"<w:t>")]
                block = b"A" * (1 << 20)
                stream, crc, size = _bomb_stream(head, block, max(1, (expands_to - len(head)) // len(block)))
                members.append((info.filename, stream, crc, size, 8))
                continue
            c = zlib.compressobj(9, zlib.DEFLATED, -15)
            members.append((info.filename, c.compress(data) + c.flush(), zlib.crc32(data), len(data), 8))
    plain.unlink()
    _zip(path, members)
    return path


def gzip_bomb(path: Path, expands_to: int) -> Path:
    """A .txt.gz of about `expands_to` bytes of text, written in milliseconds (see _bomb_stream)."""
    block = b"spam and eggs\n" * 4096
    stream, crc, size = _bomb_stream(b"", block, max(1, expands_to // len(block)))
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    path.write_bytes(header + stream + struct.pack("<II", crc, size & 0xFFFFFFFF))
    return path
