// The inspect page in Debian's Firefox ESR, driven over WebDriver BiDi by puppeteer-core, with
// the keyboard: `node firefox.mjs URL` prints one JSON object for tests/test_inspect.py to check
// (console errors, the stage totals, a reason's first document, a duplicate pair).
import puppeteer from "puppeteer-core";

const url = process.argv[2];
const browser = await puppeteer.launch({
  browser: "firefox", executablePath: process.env.FIREFOX || "/usr/bin/firefox-esr",
  headless: true, extraPrefsFirefox: {"network.proxy.type": 0, "app.update.enabled": false},
});
const out = {errors: [], version: await browser.version()};
try {
  const page = await browser.newPage();
  page.on("console", (m) => { if (m.type() === "error") out.errors.push(m.text()); });
  page.on("pageerror", (e) => out.errors.push(String(e)));
  await page.goto(url, {waitUntil: "load"});
  await page.waitForSelector("#stage-totals tr[data-stage=dedup]");
  out.totals = await page.$$eval("#stage-totals tr[data-stage]", (rows) => rows.map((r) =>
    [r.dataset.stage, Number(r.dataset.in), Number(r.dataset.out)]));
  // A clean reason, reached with Tab and opened with Enter.
  const reason = await page.$eval("button.reason[data-stage=clean]", (b) =>
    ({reason: b.dataset.reason, source: b.dataset.source}));
  await page.focus("button.reason[data-stage=clean]");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#documents:not([hidden]) #doc-list article.doc");
  out.reason = {...reason, ...await page.$eval("#doc-list article.doc", (a) =>
    ({id: a.dataset.id, stat: a.querySelector(".stat")?.textContent}))};
  // ArrowRight moves from the documents tab to the duplicates tab.
  await page.focus("#tab-documents");
  await page.keyboard.press("ArrowRight");
  await page.waitForSelector("#duplicates:not([hidden]) [data-pair]");
  out.pair = await page.$eval("#duplicates [data-pair]", (s) => ({
    text: s.textContent, removed: s.querySelectorAll("p")[0].textContent,
    kept: s.querySelectorAll("p")[1].textContent, marks: s.querySelectorAll("mark").length}));
  out.focused = await page.evaluate(() => document.activeElement.id);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
