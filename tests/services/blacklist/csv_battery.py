"""A battery of malformed blacklist CSV files and what each must produce.

Each case is (name, file bytes, expectation): ("rejected", regex of the file-level message) or
("rows", {line: (status, regex of the row message)}) for the rows that must be reported precisely.
Brand codes known to the parser in these cases: alpha, beta.
"""

from __future__ import annotations

H = "category,value,reason,brand,expires_at\n"
OK = "email,ok@example.com,fraud ring,alpha,\n"


def _b(text: str) -> bytes:
    return text.encode("utf-8")


BATTERY: list[tuple[str, bytes, tuple[str, object]]] = [
    ("empty file", b"", ("rejected", "the file is empty")),
    ("header only", _b(H), ("rejected", "no data rows")),
    ("utf-16 with BOM", (H + OK).encode("utf-16"), ("rejected", "UTF-16")),
    ("utf-16 without BOM", (H + OK).encode("utf-16-le"), ("rejected", "UTF-16")),
    ("utf-32", (H + OK).encode("utf-32"), ("rejected", "UTF-32")),
    ("latin-1", (H + "email,müller@example.com,fraud,,\n").encode("latin-1"), ("rejected", "not UTF-8.*line 2")),
    ("NUL byte", _b(H) + b"email,a\x00b@example.com,x,,\n", ("rejected", "NUL byte \\(line 2\\)")),
    ("unterminated quote", _b(H + OK + 'email,"bad@example.com,fraud,,\n'), ("rejected", "unterminated quote.*line 3")),
    ("stray quote", _b(H + 'email,"a@example.com"x,fraud,,\n'), ("rejected", "line 2: malformed CSV")),
    ("10 MB line", _b(H + "email," + "a" * 10 * 1024 * 1024 + "@x.com,r,,\n"), ("rejected", "limit is 2 MB")),
    ("1 MB line", _b(H + "email," + "a" * 1024 * 1024 + "@x.com,r,,\n"), ("rejected", "line 2 is 1,048,")),
    ("too many rows", _b(H + "".join(f"email,u{i}@example.com,r,,\n" for i in range(5001))), ("rejected", "5,000")),
    ("missing column", _b("category,value\nemail,a@example.com\n"), ("rejected", "missing required column.*reason")),
    ("unknown column", _b("category,value,reason,colour\nemail,a@example.com,r,red\n"), ("rejected", "'colour'")),
    ("repeated column", _b("category,value,reason,reason\nemail,a@example.com,r,r\n"), ("rejected", "more than once")),
    ("semicolons", _b("category;value;reason\nemail;a@example.com;r\n"), ("rejected", "semicolons")),
    ("no header", _b("\n\n"), ("rejected", "no header row")),
    (
        "extra and missing fields",
        _b(H + OK + "email,b@example.com,r,alpha,,surplus\nemail,c@example.com\n"),
        ("rows", {2: ("new", ""), 3: ("invalid", "6 fields, the header has 5"), 4: ("invalid", "2 fields")}),
    ),
    (
        "formula cells",
        _b(
            H
            + 'email,=HYPERLINK("x"),r,,\n'
            + "device,@SUM(A1),r,,\n"
            + "email,a@example.com,+cmd|' /C calc'!A0,,\n"
            + "device,-2+3,r,,\n"
            + "phone,+44 7400 900123,legit phone plus,,\n"
            + "phone,+SUM(1),r,,\n"
        ),
        (
            "rows",
            {
                2: ("invalid", "value starts with '='.*formulas"),
                3: ("invalid", "value starts with '@'"),
                4: ("invalid", "reason starts with '\\+'"),
                5: ("invalid", "value starts with '-'"),
                6: ("new", ""),
                7: ("invalid", "value starts with '\\+'"),
            },
        ),
    ),
    (  # issue 11: the check looks at the cell after NFKC and without leading (invisible) whitespace
        "formula cells behind whitespace",
        _b(
            H
            + "email, =HYPERLINK(1),r,,\n"
            + "device, @SUM(x),r,,\n"
            + "device,\u00a0+cmd,r,,\n"
            + "phone,\u00a0+cmd,r,,\n"
            + "device,\u200b=1+1,r,,\n"
            + "email,ok2@example.com,\u00a0=cmd|' /C calc'!A0,,\n"
            + "email,ok3@example.com,r,\u3000@alpha,\n"
            + "phone,\u00a0+44 7400 900123,legit phone behind a no-break space,,\n"
            + "device,\uff1dcmd,r,,\n"
        ),
        (
            "rows",
            {
                2: ("invalid", "value starts with '='"),
                3: ("invalid", "value starts with '@'"),
                4: ("invalid", "value starts with '\\+'"),
                5: ("invalid", "value starts with '\\+'"),
                6: ("invalid", "value starts with '='"),
                7: ("invalid", "reason starts with '='"),
                8: ("invalid", "brand starts with '@'"),
                9: ("new", ""),
                10: ("invalid", "value starts with '='"),  # a full-width equals sign is '=' after NFKC
            },
        ),
    ),
    (  # issue 11: invisible and control characters inside device and payment-account values
        "invisible and control characters",
        _b(
            H
            + "device,dev\u200b1,r,,\n"
            + "payment_account,card_fp\u202e_1,r,,\n"
            + "device,dev\x1b1,r,,\n"
            + "payment_account,wallet\u2066-9,r,,\n"
            + "device,\u2060dev-2,r,,\n"
            + "device,dev-3,r,,\n"
        ),
        (
            "rows",
            {
                2: ("invalid", "invisible or control character \\(U\\+200B ZERO WIDTH SPACE\\)"),
                3: ("invalid", "U\\+202E RIGHT-TO-LEFT OVERRIDE"),
                4: ("invalid", "U\\+001B"),
                5: ("invalid", "U\\+2066"),
                6: ("invalid", "U\\+2060 WORD JOINER"),
                7: ("new", ""),
            },
        ),
    ),
    (
        "duplicates in file and of an active entry",
        _b(H + "email,Dup@Example.com,r,alpha,\nemail,dup@example.com ,r,alpha,\nemail,listed@example.com,r,,\n"),
        ("rows", {2: ("new", ""), 3: ("duplicate", "line 2"), 4: ("duplicate", "entry #")}),
    ),
    (
        "invalid values",
        _b(
            H
            + "email,not-an-email,r,,\n"
            + "phone,07400900123,r,,\n"
            + "ip,10.0.0.1/8,r,,\n"
            + "payment_account,GB82 WEST 1234 5698 7654 33,r,,\n"
            + "document,#,r,,\n"
            + "colour,red,r,,\n"
        ),
        (
            "rows",
            {
                2: ("invalid", "not an email address: An email address must have an @-sign"),
                3: ("invalid", "no country code"),
                4: ("invalid", "host bits"),
                5: ("invalid", "check digits"),
                6: ("invalid", "letters and digits"),
                7: ("invalid", "unknown category 'colour'"),
            },
        ),
    ),
    (
        "bad expiry dates",
        _b(
            H
            + "email,a@example.com,r,,2020-01-01\n"
            + "email,b@example.com,r,,31/12/2030\n"
            + "email,c@example.com,r,,2999-01-01\n"
        ),
        ("rows", {2: ("invalid", "not in the future"), 3: ("invalid", "not a date"), 4: ("invalid", "years away")}),
    ),
    (
        "unknown brand and empty reason",
        _b(H + "email,a@example.com,r,gamma,\nemail,b@example.com,  ,alpha,\n"),
        ("rows", {2: ("invalid", "unknown brand code 'gamma'"), 3: ("invalid", "reason is empty")}),
    ),
    (
        "UTF-8 BOM, CRLF, quoted comma: all fine",
        b"\xef\xbb\xbf" + _b('Category,Value,Reason\r\nemail,bom@example.com,"fraud, ring"\r\n'),
        ("rows", {2: ("new", "")}),
    ),
    (
        "quoted newline in reason is one row",
        _b(H + 'email,nl@example.com,"two\nlines",,\nemail,after@example.com,r,,\n'),
        ("rows", {2: ("new", ""), 4: ("new", "")}),
    ),
]
