"""What a rendered admin page must not do with long labels: overlap, overflow, clip silently.

``layout_problems(page)`` measures the page in the browser and describes
every problem it finds (an empty list: none):

- a table cell whose text or images reach outside the cell (drawn over its
  neighbour);
- a table cell outside the part of the page one can see without scrolling
  sideways (hidden behind a horizontal scrollbar, or beyond the viewport),
  or a table running out of the box that holds it;
- the page itself, or a box other than a code block, scrolling sideways;
- text clipped without an ellipsis, or without its full text in the
  clipping element's ``title``;
- a heading's text under a button of the object tools, or two buttons
  over each other.

Text is measured by its line boxes (``Range.getClientRects``), cut by the
boxes that clip it, so that an ellipsis is not mistaken for an overflow.
"""

from __future__ import annotations

from playwright.sync_api import Page

MEASURE = """
(scope) => {
  const root = document.querySelector(scope) || document.body;
  const TOL = 1;
  const problems = [];
  const viewport = {left: 0, top: -1e9, right: document.documentElement.clientWidth, bottom: 1e9};
  const shown = (r) => r.width > 0 && r.height > 0;
  // Hidden, or there for screen readers only (the admin's .visually-hidden clips on purpose).
  const visible = (el) =>
    shown(el.getBoundingClientRect()) &&
    getComputedStyle(el).visibility !== 'hidden' &&
    !el.closest('.visually-hidden');
  const overlap = (a, b) =>
    Math.min(a.right, b.right) - Math.max(a.left, b.left) > TOL &&
    Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > TOL;
  const inside = (a, b) => a.left >= b.left - TOL && a.right <= b.right + TOL;
  const clips = (el) => getComputedStyle(el).overflowX !== 'visible';
  const text = (el) => (el.textContent || '').replace(/\\s+/g, ' ').trim();
  const name = (el) => {
    let label = el.tagName.toLowerCase();
    if (el.id) label += '#' + el.id;
    else if (el.classList.length) label += '.' + [...el.classList].join('.');
    return `${label} "${text(el).slice(0, 60)}"`;
  };
  const cut = (r, box) => ({
    left: Math.max(r.left, box.left), right: Math.min(r.right, box.right),
    top: Math.max(r.top, box.top), bottom: Math.min(r.bottom, box.bottom),
  });
  // The visible line boxes of an element's text and images, cut by every clipping box up to `until`.
  const inkRects = (el, until) => {
    const rects = [];
    const add = (r, from) => {
      let rect = {left: r.left, right: r.right, top: r.top, bottom: r.bottom};
      for (let node = from; node && node !== until; node = node.parentElement) {
        if (clips(node)) rect = cut(rect, node.getBoundingClientRect());
      }
      if (rect.right - rect.left > TOL && rect.bottom - rect.top > TOL) rects.push(rect);
    };
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT | NodeFilter.SHOW_ELEMENT);
    for (let node = walker.currentNode; node; node = walker.nextNode()) {
      if (node.nodeType === Node.TEXT_NODE) {
        if (!node.textContent.trim() || !visible(node.parentElement)) continue;
        const range = document.createRange();
        range.selectNodeContents(node);
        for (const r of range.getClientRects()) if (shown(r)) add(r, node.parentElement);
      } else if (['IMG', 'SVG', 'INPUT', 'SELECT', 'BUTTON'].includes(node.tagName.toUpperCase()) && visible(node)) {
        add(node.getBoundingClientRect(), node.parentElement);
      }
    }
    return rects;
  };

  if (document.documentElement.scrollWidth > document.documentElement.clientWidth + TOL) {
    problems.push(`the page scrolls sideways: ${document.documentElement.scrollWidth} px wide`);
  }
  for (const table of root.querySelectorAll('table')) {
    const box = table.parentElement.getBoundingClientRect();
    if (visible(table) && !clips(table.parentElement) && !inside(table.getBoundingClientRect(), box)) {
      problems.push(`${name(table)}: wider than ${name(table.parentElement).split(' ')[0]}, its box`);
    }
  }
  for (const row of root.querySelectorAll('tr')) {
    const cells = [...row.children].filter(visible);
    for (const cell of cells) {
      const box = cell.getBoundingClientRect();
      for (const ink of inkRects(cell, cell)) {
        if (!inside(ink, box)) { problems.push(`${name(cell)}: its content reaches outside the cell`); break; }
      }
      if (!inside(box, viewport)) problems.push(`${name(cell)}: beyond the viewport`);
      for (let node = cell.parentElement; node && node !== document.body; node = node.parentElement) {
        if (clips(node) && !inside(box, node.getBoundingClientRect())) {
          problems.push(`${name(cell)}: hidden beyond ${name(node).split(' ')[0]}`);
          break;
        }
      }
    }
  }
  const scrolling = (overflow) => overflow === 'auto' || overflow === 'scroll';
  for (const el of root.querySelectorAll('*')) {
    if (!visible(el)) continue;
    const style = getComputedStyle(el);
    const wide = el.scrollWidth > el.clientWidth + TOL && style.overflowX !== 'visible';
    const tall = el.scrollHeight > el.clientHeight + TOL && style.overflowY !== 'visible';
    if (wide && scrolling(style.overflowX)) {
      if (el.tagName !== 'PRE') problems.push(`${name(el)}: scrolls sideways`);
      continue;
    }
    if (!(wide || (tall && !scrolling(style.overflowY)))) continue;
    // Cut on one line (text-overflow) or after the first (line-clamp): either shows an ellipsis.
    const ellipsis = style.textOverflow === 'ellipsis' || (style.webkitLineClamp || 'none') !== 'none';
    if (!ellipsis) {
      problems.push(`${name(el)}: text clipped without an ellipsis`);
    } else if ((el.getAttribute('title') || '').replace(/\\s+/g, ' ').trim() !== text(el)) {
      problems.push(`${name(el)}: clipped, and its title is not its full text`);
    }
  }
  const headings = [...root.querySelectorAll('h1, h2')].filter(visible);
  const buttons = [...root.querySelectorAll('.object-tools a')].filter(visible);
  for (const button of buttons) {
    const box = button.getBoundingClientRect();
    for (const heading of headings) {
      if (inkRects(heading, heading).some((ink) => overlap(ink, box))) {
        problems.push(`${name(heading)} is under the button ${name(button)}`);
      }
    }
    for (const other of buttons) {
      if (other !== button && overlap(box, other.getBoundingClientRect())) {
        problems.push(`${name(button)} overlaps ${name(other)}`);
      }
    }
  }
  return problems;
}
"""


def layout_problems(page: Page, scope: str = "#container") -> list[str]:
    """Every overlap, overflow and silent clip on the page (see the module docstring)."""
    problems: list[str] = page.evaluate(MEASURE, scope)
    return problems


def set_nav_sidebar(page: Page, *, open_: bool) -> None:
    """Open or close the admin's navigation sidebar for the pages loaded next (it remembers it per browser)."""
    page.evaluate(f"localStorage.setItem('django.admin.navSidebarIsOpen', '{str(open_).lower()}')")
