// A small Markdown renderer for model replies. It builds DOM nodes with createElement and text nodes only:
// model text is never parsed as HTML, so a reply containing <script> or <img onerror=...> shows as text.
// Covered: fenced code blocks (also unclosed ones, while a reply streams), headings, paragraphs with line
// breaks, block quotes, ordered and unordered lists (nested by indentation), tables, rules, and inline code,
// bold, italic, strikethrough and links (http, https and mailto only).
"use strict";

const CriaMarkdown = (() => {
  const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
  const HEADING = /^ {0,3}(#{1,6})(?:\s+(.*?))?(?:\s+#+)?\s*$/;
  const RULE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
  const QUOTE = /^ {0,3}> ?(.*)$/;
  const ITEM = /^( *)([-*+]|\d{1,9}[.)])(?:\s+(.*)|$)/;
  const TABLE_RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;
  const SETEXT = /^ {0,3}(={2,}|-{2,})\s*$/; // two at least: a streaming "-" may start a list
  const SAFE_URL = /^(https?:\/\/|mailto:)/i;

  function el(tag, className) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    return node;
  }

  // Renders `text` into a new <div class="md">.
  function render(text) {
    const root = el("div", "md");
    renderBlocks(String(text).replace(/\r\n?/g, "\n").split("\n"), root);
    return root;
  }

  function renderBlocks(lines, parent) {
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      if (!line.trim()) {
        i++;
      } else if (FENCE.test(line)) {
        i = codeBlock(lines, i, parent);
      } else if (HEADING.test(line)) {
        const [, hashes, content] = line.match(HEADING);
        const h = el("h" + hashes.length);
        inline(content || "", h);
        parent.appendChild(h);
        i++;
      } else if (RULE.test(line)) {
        parent.appendChild(el("hr"));
        i++;
      } else if (QUOTE.test(line)) {
        i = blockQuote(lines, i, parent);
      } else if (ITEM.test(line)) {
        i = list(lines, i, parent);
      } else if (line.includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1])
        && lines[i + 1].includes("-")) {
        i = table(lines, i, parent);
      } else {
        i = paragraph(lines, i, parent);
      }
    }
  }

  function startsBlock(line) {
    return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line)
      || ITEM.test(line);
  }

  function codeBlock(lines, start, parent) {
    const [, fence, lang] = lines[start].match(FENCE);
    const indent = lines[start].length - lines[start].trimStart().length;
    const body = [];
    let i = start + 1;
    while (i < lines.length) {
      const close = lines[i].trim();
      if (close.startsWith(fence[0].repeat(fence.length)) && /^([`~])\1*$/.test(close)) {
        i++;
        break;
      }
      body.push(lines[i].startsWith(" ".repeat(indent)) ? lines[i].slice(indent) : lines[i].trimStart());
      i++;
    }
    const block = el("div", "code-block");
    const head = el("div", "code-head");
    const label = el("span", "code-lang");
    label.textContent = lang || "text";
    const copy = el("button", "copy");
    copy.type = "button";
    copy.textContent = "Copy";
    head.append(label, copy);
    const pre = el("pre");
    const code = el("code");
    if (lang) code.className = "language-" + lang.replace(/[^\w+-]/g, "");
    code.textContent = body.join("\n");
    pre.appendChild(code);
    block.append(head, pre);
    parent.appendChild(block);
    return i;
  }

  function blockQuote(lines, start, parent) {
    const inner = [];
    let i = start;
    while (i < lines.length && QUOTE.test(lines[i])) {
      inner.push(lines[i].match(QUOTE)[1]);
      i++;
    }
    const quote = el("blockquote");
    renderBlocks(inner, quote);
    parent.appendChild(quote);
    return i;
  }

  // A list of items of the same kind at the first item's indentation; deeper lines belong to the item.
  function list(lines, start, parent) {
    const first = lines[start].match(ITEM);
    const indent = first[1].length;
    const ordered = /\d/.test(first[2]);
    const node = el(ordered ? "ol" : "ul");
    if (ordered && parseInt(first[2], 10) !== 1) node.start = parseInt(first[2], 10);
    let i = start;
    while (i < lines.length) {
      const m = lines[i].match(ITEM);
      if (!m || m[1].length !== indent || /\d/.test(m[2]) !== ordered) break;
      const body = [m[3] || ""];
      i++;
      while (i < lines.length) {
        const next = lines[i];
        const depth = next.length - next.trimStart().length;
        if (next.trim() && depth <= indent) break;
        if (!next.trim() && !(i + 1 < lines.length && lines[i + 1].trim()
          && lines[i + 1].length - lines[i + 1].trimStart().length > indent)) break;
        body.push(next.slice(Math.min(depth, indent + m[2].length + 1)));
        i++;
      }
      const li = el("li");
      if (body.length === 1 || !body.slice(1).some(startsBlock)) {
        inline(body.join("\n"), li);
      } else {
        renderBlocks(body, li);
      }
      node.appendChild(li);
      while (i < lines.length && !lines[i].trim()) {
        const after = lines[i + 1];
        const m2 = after && after.match(ITEM);
        if (!m2 || m2[1].length !== indent) break;
        i++;
      }
    }
    parent.appendChild(node);
    return i;
  }

  function cells(line) {
    let row = line.trim();
    if (row.startsWith("|")) row = row.slice(1);
    if (row.endsWith("|") && !row.endsWith("\\|")) row = row.slice(0, -1);
    return row.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, "|"));
  }

  function table(lines, start, parent) {
    const wrap = el("div", "table-wrap");
    const node = el("table");
    const head = el("thead");
    const headRow = el("tr");
    for (const cell of cells(lines[start])) {
      const th = el("th");
      inline(cell, th);
      headRow.appendChild(th);
    }
    head.appendChild(headRow);
    node.appendChild(head);
    const body = el("tbody");
    let i = start + 2;
    while (i < lines.length && lines[i].includes("|") && lines[i].trim()) {
      const tr = el("tr");
      for (const cell of cells(lines[i])) {
        const td = el("td");
        inline(cell, td);
        tr.appendChild(td);
      }
      body.appendChild(tr);
      i++;
    }
    node.appendChild(body);
    wrap.appendChild(node);
    parent.appendChild(wrap);
    return i;
  }

  function paragraph(lines, start, parent) {
    const body = [lines[start]];
    let i = start + 1;
    while (i < lines.length && lines[i].trim() && !startsBlock(lines[i]) && !SETEXT.test(lines[i])) {
      body.push(lines[i]);
      i++;
    }
    if (i < lines.length && SETEXT.test(lines[i])) {
      const h = el(lines[i].trim()[0] === "=" ? "h1" : "h2"); // "Title\n====="
      inline(body.join("\n"), h);
      parent.appendChild(h);
      return i + 1;
    }
    const p = el("p");
    inline(body.join("\n"), p);
    parent.appendChild(p);
    return i;
  }

  // Inline spans. Code spans first (nothing inside them is formatted), then the earliest of the others.
  const SPANS = [
    { re: /`+/, code: true },
    { re: /\*\*(?=\S)([\s\S]*?\S)\*\*/, tag: "strong" },
    { re: /(?<![\p{L}\p{N}])__(?=\S)([\s\S]*?\S)__(?![\p{L}\p{N}])/u, tag: "strong" },
    { re: /\*(?=[^\s*])([\s\S]*?[^\s*])\*/, tag: "em" },
    { re: /(?<![\p{L}\p{N}])_(?=[^\s_])([\s\S]*?[^\s_])_(?![\p{L}\p{N}])/u, tag: "em" },
    { re: /~~(?=\S)([\s\S]*?\S)~~/, tag: "del" },
    { re: /\[([^\]\n]+)\]\(\s*<?([^\s)>]+)>?(?:\s+"[^"]*")?\s*\)/, link: true },
    { re: /\bhttps?:\/\/[^\s<>()]+[^\s<>().,;:!?'"]/, bare: true },
  ];

  function inline(text, parent) {
    while (text) {
      let best = null;
      for (const span of SPANS) {
        const m = span.re.exec(text);
        if (m && (!best || m.index < best.m.index)) best = { span, m };
      }
      if (!best) break;
      const { span, m } = best;
      let consumed = m[0].length;
      if (m.index > 0) appendText(parent, text.slice(0, m.index));
      if (span.code) {
        const after = m.index + m[0].length;
        const run = new RegExp("(?<!`)" + m[0] + "(?!`)").exec(text.slice(after)); // same length closes
        const close = run ? after + run.index : -1;
        if (close < 0) {
          appendText(parent, m[0]);
        } else {
          const code = el("code");
          code.textContent = text.slice(m.index + m[0].length, close).replace(/^ (.+) $/, "$1");
          parent.appendChild(code);
          consumed = close + m[0].length - m.index;
        }
      } else if (span.link || span.bare) {
        const url = span.bare ? m[0] : m[2];
        if (SAFE_URL.test(url)) {
          const a = el("a");
          a.href = url;
          a.target = "_blank";
          a.rel = "noopener noreferrer";
          if (span.bare) a.textContent = url;
          else inline(m[1], a);
          parent.appendChild(a);
        } else {
          appendText(parent, span.bare ? m[0] : m[1]);
        }
      } else {
        const node = el(span.tag);
        inline(m[1], node);
        parent.appendChild(node);
      }
      text = text.slice(m.index + consumed);
    }
    if (text) appendText(parent, text);
  }

  // Text with its line breaks kept as <br>.
  function appendText(parent, text) {
    const parts = text.split("\n");
    parts.forEach((part, k) => {
      if (k > 0) parent.appendChild(el("br"));
      if (part) parent.appendChild(document.createTextNode(part));
    });
  }

  return { render };
})();

window.CriaMarkdown = CriaMarkdown;
