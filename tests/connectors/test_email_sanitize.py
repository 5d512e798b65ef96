"""HTML sanitising and HTML -> text (connectors.email.sanitize)."""

from __future__ import annotations

import pytest

from connectors.email.sanitize import has_remote_images, html_to_text, sanitize_html

EVIL = """<html><head><base href="https://evil.example/"><meta http-equiv="refresh" content="0">
<style>body{background:url(https://evil.example/css.gif)}</style>
<script>alert(1)</script></head>
<body onload="steal()">
<p onclick="x()" style="color:red; position:fixed; background:url(https://t.example/p.gif)">Hi</p>
<a href="javascript:alert(1)">js</a> <a href="JaVaScRiPt:alert(2)">js2</a>
<a href="data:text/html,<script>alert(3)</script>">data</a>
<a href="https://ok.example/x">ok</a> <a href="mailto:me@ok.example">mail</a>
<img src="x" onerror="alert(4)">
<iframe src="https://evil.example/frame">inner</iframe>
<form action="https://evil.example/"><input name="card"><button>Pay</button></form>
<object data="x.swf"></object><embed src="x.swf"><svg><script>alert(5)</script></svg>
<div style="width:expression(alert(6))">ie</div>
</body></html>"""


def test_dangerous_markup_is_removed():
    out = sanitize_html(EVIL)
    lowered = out.lower()
    for bad in (
        "<script",
        "alert(",
        "onload",
        "onclick",
        "onerror",
        "javascript:",
        "data:text",
        "<iframe",
        "<form",
        "<input",
        "<button",
        "<object",
        "<embed",
        "<svg",
        "<style",
        "<base",
        "<meta",
        "position",
        "url(",
        "expression",
    ):
        assert bad not in lowered, bad
    assert '<p style="color:red">Hi</p>' in out
    assert '<a href="https://ok.example/x" target="_blank" rel="noopener noreferrer">ok</a>' in out
    assert 'href="mailto:me@ok.example"' in out


def test_cid_images_are_rewritten_through_the_map():
    html = '<p>See</p><img src="cid:Logo@Shop" alt="logo"><img src="cid:unknown@x">'
    out = sanitize_html(html, cid_map={"<logo@shop>": "/attachments/17"})
    assert '<img src="/attachments/17" alt="logo">' in out
    assert "cid:" not in out


def test_cid_kept_without_a_map_and_sanitising_is_idempotent():
    first = sanitize_html('<img src="cid:a@b"><script>x</script>')
    assert first == '<img src="cid:a@b">'
    assert sanitize_html(first, cid_map={"a@b": "https://app.example/a"}) == (
        '<img src="https://app.example/a">'
    )


def test_remote_images_are_blocked_by_default():
    html = '<img src="https://t.example/p.gif" width="1"><img src="//cdn.example/x.png">'
    out = sanitize_html(html)
    assert "src=" not in out.replace("data-src=", "")
    assert 'data-src="https://t.example/p.gif"' in out
    assert 'data-src="https://cdn.example/x.png"' in out
    assert has_remote_images(out) and has_remote_images(html)
    allowed = sanitize_html(html, allow_remote_images=True)
    assert '<img src="https://t.example/p.gif" width="1">' in allowed


def test_no_remote_images():
    assert not has_remote_images('<img src="cid:x@y"><p>hi</p>')
    assert not has_remote_images(None)


def test_data_src_cannot_smuggle_a_script_url():
    assert "javascript" not in sanitize_html('<img data-src="javascript:alert(1)">')


@pytest.mark.parametrize("html", ["", "   ", None, "plain text, no tags", "<<<>>>", "\x00\x01"])
def test_odd_input(html):
    sanitize_html(html)
    html_to_text(html)


def test_html_to_text():
    html = (
        "<html><head><title>T</title><style>p{}</style></head><body>"
        "<h1>Order</h1><p>Hello&nbsp;<b>Anna</b>,<br>your order:</p>"
        "<ul><li>Shoes</li><li>Socks</li></ul><ol><li>first</li></ol>"
        '<p>Track it <a href="https://t.example/1">here</a>.</p>'
        '<div style="display:none">preheader</div>'
        "<table><tr><td>Total</td><td>19.90</td></tr></table>"
        "<blockquote>old<br>text</blockquote><pre>  keep   spaces</pre></body></html>"
    )
    assert html_to_text(html) == (
        "Order\n\nHello Anna,\nyour order:\n\n- Shoes\n- Socks\n\n1. first\n\n"
        "Track it here (https://t.example/1).\n\nTotal 19.90\n\n> old\n> text\n\n  keep   spaces"
    )


def test_html_to_text_rtl_and_cjk():
    assert html_to_text("<div dir='rtl'>سلام</div><div>您好</div>") == "سلام\n您好"
