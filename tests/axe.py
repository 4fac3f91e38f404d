"""Accessibility checks run inside a Playwright page: axe-core's rules, and the ones axe has no
rule for (one h1, no sideways scrolling, touch target sizes, visible focus).

axe-core comes from npm (package.json, `make install`). It is injected as a script, which the
site's Content-Security-Policy refuses (script-src 'self'): the pages checked here are opened in
a browser context made with `bypass_csp=True`; every other browser test keeps the CSP enforced."""

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import Page

AXE_SCRIPT = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
# What the issue asks for: no violation of these impacts (axe's others are "minor" and "moderate").
BLOCKING_IMPACTS = ("serious", "critical")
# WCAG 2.5.5 (AAA) and Apple's and Google's guidelines: 44 CSS px each way on a phone.
TOUCH_TARGET = 44


def axe_violations(page: Page, *, within: str | None = None) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (all of axe's default rules: WCAG A and AA
    and best practices), in the whole page or within the element the selector `within` finds."""
    if not AXE_SCRIPT.exists():
        pytest.fail(f"{AXE_SCRIPT} is missing: run `make install` (npm ci) first")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_SCRIPT))
    if within is not None and not page.locator(within).count():
        pytest.fail(f"nothing in the page for axe to check: {within}")
    violations: list[dict[str, Any]] = page.evaluate(
        "async (within) => (await window.axe.run(within || document, { resultTypes: ['violations'] })).violations",
        within,
    )
    return violations


def blocking_violations(page: Page, *, within: str | None = None) -> list[str]:
    """The serious and critical violations, one line each: the rule, its help, and the elements."""
    lines = []
    for violation in axe_violations(page, within=within):
        if violation["impact"] not in BLOCKING_IMPACTS:
            continue
        for node in violation["nodes"]:
            summary = node.get("failureSummary", "").replace("\n", " ")
            lines.append(f"{violation['impact']} {violation['id']} ({violation['help']}): {node['target']} {summary}")
    return lines


def h1_count(page: Page) -> int:
    return int(page.locator("h1").count())


def overflows_sideways(page: Page) -> bool:
    """Whether the page is wider than the window, i.e. scrolls sideways."""
    return bool(page.evaluate("() => document.documentElement.scrollWidth > window.innerWidth"))


# Every visible control in the page smaller than TOUCH_TARGET either way, except:
# - an inline text link inside a sentence (WCAG 2.5.8's "inline" exception: its size is set by
#   the line of text): an <a> whose computed display is `inline` and whose nearest block-level
#   ancestor holds words (letters or digits) outside the link;
# - what is not shown: display none, visibility hidden, a zero-sized box, or a box parked above
#   the top of the page (the skip link until it is focused);
# - a <video>'s own controls (the browser's, not ours).
SMALL_TARGETS = """
(minimum) => {
  const selector = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [role=button], '
    + '[tabindex]:not([tabindex="-1"])';
  function blockAncestor(el) {
    let node = el.parentElement;
    while (node && getComputedStyle(node).display.startsWith('inline')) node = node.parentElement;
    return node || document.body;
  }
  function inSentence(el) {
    if (el.tagName !== 'A' || getComputedStyle(el).display !== 'inline') return false;
    const block = blockAncestor(el);
    const around = block.textContent.replace(el.textContent, '');
    return /[\\p{L}\\p{N}]/u.test(around);
  }
  const small = [];
  for (const el of document.querySelectorAll(selector)) {
    const style = getComputedStyle(el);
    // A box ticked by a tap on its words too: its target is the label around it (WCAG's "target").
    const label = el.matches('input[type=checkbox], input[type=radio]') ? el.closest('label') : null;
    const box = (label || el).getBoundingClientRect();
    if (style.visibility === 'hidden' || box.width === 0 || box.height === 0) continue;
    if (box.bottom + window.scrollY <= 0) continue;
    if (inSentence(el)) continue;
    if (box.width < minimum - 0.5 || box.height < minimum - 0.5) {
      const name = (el.getAttribute('aria-label') || el.textContent || el.name || el.id || '').trim().slice(0, 40);
      small.push(`<${el.tagName.toLowerCase()}> "${name}" is ${Math.round(box.width)}x${Math.round(box.height)}`);
    }
  }
  return small;
}
"""


def small_touch_targets(page: Page) -> list[str]:
    return list(page.evaluate(SMALL_TARGETS, TOUCH_TARGET))


def focus_the_top(page: Page) -> None:
    """Focus the body for a moment, so that the next Tab starts from the top of the page, as on arrival."""
    page.evaluate(
        "() => { const body = document.body; body.tabIndex = -1; body.focus(); body.removeAttribute('tabindex'); }"
    )


# The buttons (and links drawn as buttons) whose words break over two lines or more.
WRAPPED_BUTTONS = """
() => [...document.querySelectorAll('button, a.button, .tab')]
  .filter((el) => el.getClientRects().length > 0)
  .filter((el) => {
    // The words shown: text read only by screen readers (.visually-hidden) takes no line.
    const bottoms = new Set();
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let text = walker.nextNode(); text; text = walker.nextNode()) {
      if (text.parentElement.closest('.visually-hidden')) continue;
      const words = document.createRange();
      words.selectNodeContents(text);
      for (const line of words.getClientRects()) bottoms.add(Math.round(line.bottom));
    }
    return bottoms.size > 1;
  })
  .map((el) => el.textContent.trim())
"""


def wrapped_buttons(page: Page) -> list[str]:
    return list(page.evaluate(WRAPPED_BUTTONS))


# The focused element's focus indicator, and the same element's look once it is blurred.
FOCUS_STYLE = """
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const look = () => {
    const s = getComputedStyle(el);
    return {
      outline: s.outlineStyle + ' ' + s.outlineWidth + ' ' + s.outlineColor,
      width: parseFloat(s.outlineWidth) || 0,
      style: s.outlineStyle,
      shadow: s.boxShadow,
    };
  };
  const focused = look();
  el.blur();
  const blurred = look();
  el.focus();
  const name = (el.getAttribute('aria-label') || el.textContent || el.name || el.id || el.tagName).trim().slice(0, 40);
  return { name: el.tagName.toLowerCase() + ' "' + name + '"', focused, blurred };
}
"""


def tab_stops_without_visible_focus(page: Page, *, stops: int = 40) -> tuple[int, list[str]]:
    """Tab through the page (as a keyboard user does, so :focus-visible applies): how many stops
    were met, and those whose focus is not clearly shown, i.e. no outline of at least 2 px and no
    box shadow that the unfocused element lacks."""
    focus_the_top(page)
    met, faint = 0, []
    seen: set[str] = set()
    for _ in range(stops):
        page.keyboard.press("Tab")
        look = page.evaluate(FOCUS_STYLE)
        if look is None:
            break
        key = look["name"] + str(page.evaluate("() => document.activeElement.getBoundingClientRect().top"))
        if key in seen:  # round the page once
            break
        seen.add(key)
        met += 1
        focused, blurred = look["focused"], look["blurred"]
        outlined = focused["style"] != "none" and focused["width"] >= 2 and focused["outline"] != blurred["outline"]
        shadowed = focused["shadow"] != "none" and focused["shadow"] != blurred["shadow"]
        if not (outlined or shadowed):
            faint.append(f"{look['name']}: focused {focused}, unfocused {blurred}")
    return met, faint
