"""Files in the composer, in a real Chromium: choose, drop or paste them, see them, send them,
and see a file the channel refuses turned down in the composer before anything is sent."""

from __future__ import annotations

import base64

import pytest
import requests
import sqlalchemy as sa
from selenium.webdriver.common.keys import Keys

from app.extensions import db
from app.models import Attachment, OutboxItem
from tests.browser.conftest import run_worker
from tests.channels.harness import smtp_sink  # noqa: F401 - a fixture
from tests.files import pdf, png

pytestmark = pytest.mark.browser

MB = 1024 * 1024


def _open(page, agent, snippet: str) -> None:
    page.login(agent.email)
    page.click(".conv-row", snippet)
    page.wait_text("#thread-log .msg.in", snippet)
    page.wait_css("#composer-text")


def _choose(page, path) -> None:
    """Pick a file with the paperclip's file chooser."""
    page.css("#composer input[type=file]").send_keys(str(path))


def _drop_or_paste(page, how: str, name: str, mime: str, content: bytes) -> None:
    """Drop a file on the composer, or paste it into the text box, as the browser would."""
    page.js(
        """
        const [how, name, mime, b64] = arguments;
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], name, { type: mime }));
        if (how === "paste") {
          const box = document.getElementById("composer-text");
          box.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true }));
        } else {
          const form = document.querySelector(".composer-form");
          for (const type of ["dragenter", "dragover", "drop"]) {
            form.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
          }
        }
        """,
        how,
        name,
        mime,
        base64.b64encode(content).decode(),
    )


def _chip_ready(page, name: str):
    return page.wait(
        lambda d: page.js(
            "const c = document.querySelector(`.att-chip[data-name='${arguments[0]}']`);"
            "return c && !c.classList.contains('uploading') ? c : null",
            name,
        ),
        message=f"chip {name} uploaded",
    )


def _uploads() -> list[Attachment]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Attachment).order_by(Attachment.id)))


def test_attach_and_send_an_image_on_messenger(page, make, app, fake_graph, tmp_path):
    agent = make.user("agent", name="Lucas Martin")
    inbox = make.inbox("messenger", members=[agent])
    make.inbound(inbox, contact="psid-amira", text="Which colour is the bag?")
    photo = tmp_path / "bag in blue.png"
    photo.write_bytes(png(120, 80, (40, 90, 200)))
    _open(page, agent, "Which colour is the bag?")

    # the paperclip: a chip with a thumbnail of the picture
    _choose(page, photo)
    chip = _chip_ready(page, "bag in blue.png")
    assert page.js("return arguments[0].querySelector('img.att-thumb').naturalWidth", chip) == 120
    # dropped and pasted pictures join it; one is taken back with its remove button
    _drop_or_paste(page, "drop", "other angle.png", "image/png", png(60, 60, (200, 40, 40)))
    _drop_or_paste(page, "paste", "image.png", "image/png", png(30, 30, (40, 160, 60)))
    _chip_ready(page, "other angle.png")
    _chip_ready(page, "image.png")
    assert len(_uploads()) == 3
    page.screenshot("composer-attachments-chosen")
    page.click(".att-chip[data-name='other angle.png'] .att-remove")
    page.wait(lambda d: len(page.all(".att-chip")) == 2)
    page.wait(lambda d: len(_uploads()) == 2, message="the removed upload is deleted")

    box = page.css("#composer-text")
    box.send_keys("Here it is in blue.")
    box.send_keys(Keys.CONTROL, Keys.ENTER)
    page.wait(lambda d: len(page.all("#thread-log .msg.out .att-image img")) == 2)
    assert page.all(".att-chip") == []  # the tray is empty once sent
    page.wait(lambda d: page.attr("#thread-log .msg.out", "data-status") == "queued")
    assert run_worker(app) >= 1
    page.wait(lambda d: page.attr("#thread-log .msg.out .tick", "data-status") == "sent")
    # Meta got the text, then each picture by a URL it can fetch without signing in
    sends = fake_graph.sends()
    assert sends[0]["json"]["message"]["text"] == "Here it is in blue."
    urls = [s["json"]["message"]["attachment"]["payload"]["url"] for s in sends[1:]]
    assert len(urls) == 2 and all(u.startswith(page.url + "/files/") for u in urls)
    assert urls[0].endswith("/bag%20in%20blue.png")
    fetched = requests.get(urls[0], timeout=10)
    assert fetched.status_code == 200 and fetched.content == photo.read_bytes()
    # the pictures show in the thread, served from our own origin
    page.wait(
        lambda d: page.js(
            "return [...document.querySelectorAll('#thread-log .msg.out .att-image img')]"
            ".every((i) => i.complete && i.naturalWidth > 0 && i.src.includes('/api/v1/attachments/'))"
        )
    )
    page.screenshot("thread-attachments-sent-messenger")
    assert page.console_errors() == []


def test_attach_and_send_a_pdf_by_email(page, make, app, smtp_sink, tmp_path):  # noqa: F811
    sink, port = smtp_sink
    agent = make.user("agent", name="Lucas Martin")
    inbox = make.inbox("email", members=[agent], smtp_port=port)
    make.inbound(inbox, contact="anna@example.com", text="Could I get the invoice for order 1042?")
    invoice = tmp_path / "invoice-1042.pdf"
    invoice.write_bytes(pdf("Invoice 1042"))
    _open(page, agent, "invoice for order 1042")

    _choose(page, invoice)
    chip = _chip_ready(page, "invoice-1042.pdf")
    assert chip.find_element("css selector", ".att-thumb.file")  # a file, not a picture
    page.css("#composer-text").send_keys("Here is your invoice.", Keys.CONTROL, Keys.ENTER)
    link = page.wait_css("#thread-log .msg.out .att-file")
    assert "invoice-1042.pdf" in link.text
    page.wait(lambda d: page.attr("#thread-log .msg.out", "data-status") == "queued")
    page.wait(lambda d: run_worker(app) >= 0 and sink.received, timeout=15, message="mail sent")
    (part,) = list(sink.last().iter_attachments())
    assert part.get_filename() == "invoice-1042.pdf"
    assert part.get_content_type() == "application/pdf"
    assert part.get_content() == invoice.read_bytes()
    assert "Here is your invoice." in sink.texts()[-1]
    page.wait(lambda d: page.attr("#thread-log .msg.out .tick", "data-status") == "sent")
    page.screenshot("thread-attachment-sent-email")
    assert page.console_errors() == []


def test_a_file_the_channel_refuses_is_turned_down_in_the_composer(page, make, tmp_path):
    agent = make.user("agent", name="Lucas Martin")
    gbm = make.inbox("gbm", members=[agent])
    sms = make.inbox("sms", members=[agent])
    make.inbound(gbm, contact="gbm-conv-000000000001", text="Do you have my receipt?")
    make.inbound(sms, contact="+14155550111", text="Send me the manual please")
    receipt = tmp_path / "receipt.pdf"
    receipt.write_bytes(pdf("Receipt"))
    manual = tmp_path / "manual.pdf"
    manual.write_bytes(pdf("Manual", pad_to=6 * MB))

    # Google Business Messages takes pictures only
    _open(page, agent, "Do you have my receipt?")
    _choose(page, receipt)
    notice = page.wait_css(".att-notice")
    assert "Google Business Messages cannot send receipt.pdf" in notice.text
    assert "JPEG or PNG images" in notice.text
    assert page.all(".att-chip") == []
    page.screenshot("composer-attachment-refused-gbm")
    # a private note is for the team only: the same file may go there
    page.click(".ctab[data-mode='note']")
    page.wait(lambda d: not page.css(".att-notice").is_displayed())
    _choose(page, receipt)
    _chip_ready(page, "receipt.pdf")
    # back to a reply: the composer says why it cannot go, and sends nothing
    page.click(".ctab[data-mode='reply']")
    page.wait_text(".att-notice", "JPEG or PNG images")
    page.css("#composer-text").send_keys("Here you go", Keys.CONTROL, Keys.ENTER)
    assert "Here you go" not in page.text("#thread-log")

    # SMS (MMS) carries at most 5 MB
    page.click(".conv-row", "Send me the manual please")
    page.wait_text("#thread-log .msg.in", "Send me the manual please")
    _choose(page, manual)
    notice = page.wait_css(".att-notice")
    assert "manual.pdf is 6 MB: SMS takes files up to 5 MB." in notice.text
    assert page.all(".att-chip") == []
    page.screenshot("composer-attachment-refused-sms")
    # nothing was uploaded for the refused files, nothing queued for any provider
    assert [a.filename for a in _uploads()] == ["receipt.pdf"]
    sends = sa.select(sa.func.count()).select_from(OutboxItem).where(OutboxItem.kind == "send")
    assert db.session.scalar(sends) == 0
    assert page.console_errors() == []
