// Files in the composer: the paperclip, drag and drop, pasted images; a chip per file with a
// preview and a remove button; each channel's limits (from its adapter, through the inbox
// object or the boot data) checked the moment a file is chosen. The server checks them again
// when the upload arrives (422) and when the reply is posted (409 attachment_refused).

import { ApiError, api, caps, channelName, h, icon, t } from "./core.js";
import { S } from "./state.js";
import { fileSize } from "./thread.js";

// raster images a browser draws as a thumbnail (never SVG: it could carry script)
const PREVIEW = /^image\/(jpeg|png|gif|webp|bmp|avif)$/;

/** The file rules of the conversation's inbox (its channel's, unless the inbox changes them). */
export function rulesFor(conv) {
  const inbox = S.inboxes.get(conv.inbox.id);
  return (inbox && inbox.attachments) || caps(conv).attachments || null;
}

const bare = (type) => String(type || "").split(";")[0].trim().toLowerCase();

/** Why `files` ({name, type, size}) cannot go out together on the conversation's channel. */
export function refusal(conv, files) {
  const rules = rulesFor(conv);
  if (!rules || !files.length) return null;
  const channel = channelName(conv.inbox.channel);
  for (const f of files) {
    if (rules.types && !rules.types.includes(bare(f.type))) {
      return t("{channel} cannot send {name}: it takes only {types}.", { channel, name: f.name, types: t(rules.types_label) });
    }
    const cap = Math.min(rules.max_file_bytes ?? Infinity, rules.max_total_bytes ?? Infinity);
    if (f.size > cap) return t("{name} is {size}: {channel} takes files up to {max}.", { name: f.name, size: fileSize(f.size), channel, max: fileSize(cap) });
  }
  if (files.length > rules.max_files) return t("{channel} sends at most {n} files in one message.", { channel, n: rules.max_files });
  const total = files.reduce((sum, f) => sum + f.size, 0);
  if (rules.max_total_bytes != null && total > rules.max_total_bytes) {
    return t("These files add up to {size}: {channel} takes at most {max} in one message.", { size: fileSize(total), channel, max: fileSize(rules.max_total_bytes) });
  }
  return null;
}

/** POST /api/v1/uploads with progress; resolves with the upload, rejects with an ApiError. */
function upload(file, conversationId, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/uploads");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRFToken", document.querySelector('meta[name="csrf-token"]')?.content || "");
    xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); });
    xhr.addEventListener("load", () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 201) resolve(data);
      else reject(new ApiError(xhr.status, data));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, { error: { code: "network", message: t("Cannot reach the server. Check your connection.") } })));
    const form = new FormData();
    form.append("file", file, file.name);
    if (conversationId) form.append("conversation_id", String(conversationId));
    xhr.send(form);
  });
}

const forget = (item) => { if (item.preview) URL.revokeObjectURL(item.preview); };
const discard = (item) => {
  forget(item);
  if (item.id) api(`/uploads/${item.id}`, { method: "DELETE" }).catch(() => { /* dropped after a day anyway */ });
};

/**
 * The composer's files for one draft. `draft.files` keeps them while the agent looks at
 * another conversation. `mode()` says "reply" or "note" (a note's files are only for the team:
 * no channel limit); `notify(text)` shows a refusal in the composer (null hides it).
 */
export function fileTray(conv, draft, { mode, notify, onChange }) {
  draft.files = draft.files || [];
  const input = h("input.visually-hidden", { type: "file", multiple: true, tabindex: "-1", "aria-hidden": "true" });
  const button = h("button.icon-btn.attach-btn", { type: "button", title: t("Attach a file"), "aria-label": t("Attach a file") }, icon("clip"));
  const chips = h("div.att-tray", { role: "list", "aria-label": t("Attached files") });
  const items = () => draft.files;
  const described = (list) => list.map((i) => ({ name: i.name, type: i.type, size: i.size }));

  const draw = () => {
    chips.hidden = !items().length;
    chips.replaceChildren(...items().map((item) => {
      const thumb = item.preview ? h("img.att-thumb", { src: item.preview, alt: "" }) : h("span.att-thumb.file", icon("file"));
      const remove = h("button.icon-btn.sm.att-remove", { type: "button", "aria-label": t("Remove {name}", { name: item.name }), title: t("Remove {name}", { name: item.name }),
        onclick: () => { draft.files = items().filter((i) => i !== item); discard(item); recheck(); draw(); onChange(); } }, icon("x"));
      return h("div.att-chip" + (item.state === "uploading" ? ".uploading" : ""), { role: "listitem", dataset: { name: item.name } },
        thumb,
        h("span.att-chip-text",
          h("span.att-chip-name", { dir: "auto", title: item.name }, item.name),
          h("span.att-chip-size.muted", item.state === "uploading" ? t("Uploading… {percent}%", { percent: Math.round(item.progress * 100) }) : fileSize(item.size))),
        item.state === "uploading" ? h("span.att-progress", { style: `inline-size:${Math.round(item.progress * 100)}%` }) : null,
        remove);
    }));
  };

  /** The draft's files judged again (after a mode switch): the reason, or null. */
  const recheck = () => {
    const why = mode() === "reply" ? refusal(conv, described(items())) : null;
    notify(why);
    return why;
  };

  const addOne = async (file) => {
    if (!file || !file.size) return;
    const item = { name: file.name || t("file"), type: bare(file.type), size: file.size, state: "uploading", progress: 0, id: null,
      preview: PREVIEW.test(bare(file.type)) ? URL.createObjectURL(file) : null };
    if (mode() === "reply") {
      const why = refusal(conv, described([...items(), item]));
      if (why) { forget(item); notify(why); return; }
    }
    notify(null);
    draft.files = [...items(), item];
    draw();
    onChange();
    try {
      const done = await upload(file, mode() === "reply" ? conv.id : null, (p) => { item.progress = p; draw(); });
      Object.assign(item, { id: done.id, type: bare(done.content_type), size: done.size, name: done.filename || item.name, state: "ready" });
      if (!items().includes(item)) { discard(item); return; } // removed while it uploaded
      // the server judged the bytes: a file that only claimed to be an image is one no longer
      const why = mode() === "reply" ? refusal(conv, described(items().filter((i) => i.state === "ready"))) : null;
      if (why) { draft.files = items().filter((i) => i !== item); discard(item); notify(why); }
    } catch (e) {
      draft.files = items().filter((i) => i !== item);
      forget(item);
      notify(e.status === 413 ? t("{name} is larger than the server accepts.", { name: item.name }) : e.message || t("The file could not be uploaded."));
    }
    draw();
    onChange();
  };

  const add = (list) => { for (const file of list) addOne(file); };

  button.addEventListener("click", () => input.click());
  input.addEventListener("change", () => { add([...input.files]); input.value = ""; });
  draw();

  return {
    button, input, chips, add, recheck,
    count: () => items().length,
    busy: () => items().some((i) => i.state === "uploading"),
    ids: () => items().filter((i) => i.state === "ready").map((i) => i.id),
    /** What the optimistic message shows until the server answers. */
    shown: () => items().map((i, n) => ({ id: -1 - n, filename: i.name, content_type: i.type, size: i.size, state: "stored",
      inline: !!i.preview, kind: i.preview ? "image" : "file", url: i.preview })),
    /** Empty the tray for a send; `restore` puts the files back when the send fails. */
    take: () => { const taken = items(); draft.files = []; draw(); return taken; },
    restore: (taken) => { draft.files = [...taken, ...items()]; draw(); onChange(); },
    release: (taken) => taken.forEach((i) => setTimeout(() => forget(i), 60000)), // previews shown in the thread meanwhile
    setDisabled: (off) => { button.disabled = off; },
  };
}

/** Files dropped on `zone` or pasted into `text` go to `tray`. */
export function acceptFiles(zone, text, tray, canAttach) {
  let depth = 0;
  const carriesFiles = (e) => [...(e.dataTransfer?.types || [])].includes("Files");
  zone.addEventListener("dragenter", (e) => {
    if (!carriesFiles(e) || !canAttach()) return;
    e.preventDefault();
    depth += 1;
    zone.classList.add("dropping");
  });
  zone.addEventListener("dragover", (e) => {
    if (!carriesFiles(e) || !canAttach()) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
  });
  zone.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.classList.remove("dropping");
  });
  zone.addEventListener("drop", (e) => {
    depth = 0;
    zone.classList.remove("dropping");
    if (!carriesFiles(e) || !canAttach()) return;
    e.preventDefault();
    tray.add([...e.dataTransfer.files]);
  });
  text.addEventListener("paste", (e) => {
    const files = [...(e.clipboardData?.files || [])];
    // a copied picture (a screenshot): attach it; copied text (even with pictures) stays text
    if (!files.length || e.clipboardData.getData("text/plain") || !canAttach()) return;
    e.preventDefault();
    tray.add(files);
  });
}
