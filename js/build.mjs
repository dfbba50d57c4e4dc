// Builds each widget module in src/ into ../falnb/static/, the files the wheel ships.
// `node build.mjs --verify` rebuilds in memory and fails when the shipped files drift.
//
// Why a build step: anywidget loads one ES module per widget, so what a widget imports (a
// module shared between widgets, issue 17's msgpack codec) has to be bundled in. The shipped
// files are build output, minified so they read as such and never as a second copy of the
// sources; they are committed so a git checkout works without Node, and `make check` proves
// they are what src/ builds to. Files whose names start with "_" are shared modules, not entries.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { build } from "esbuild";

const here = new URL(".", import.meta.url).pathname;
const src = join(here, "src");
const out = join(here, "..", "falnb", "static");
const verify = process.argv.includes("--verify");

const entries = readdirSync(src).filter(
  (f) => !f.startsWith("_") && (f.endsWith(".js") || f.endsWith(".css")),
);
let drifted = 0;
for (const entry of entries) {
  const result = await build({
    entryPoints: [join(src, entry)],
    bundle: true,
    format: "esm",
    target: "es2020",
    write: false,
    minify: true,
    legalComments: "none",
    banner: {
      js: "// Built from js/src by js/build.mjs; do not edit.",
      css: "/* Built from js/src by js/build.mjs; do not edit. */",
    },
  });
  const text = result.outputFiles[0].text;
  const target = join(out, basename(entry));
  if (verify) {
    let shipped = "";
    try {
      shipped = readFileSync(target, "utf8");
    } catch {}
    if (shipped !== text) {
      process.stderr.write(`falnb/static/${entry} differs from js/src/${entry}: run 'make js'\n`);
      drifted += 1;
    }
  } else {
    writeFileSync(target, text);
  }
}
if (drifted) process.exit(1);
