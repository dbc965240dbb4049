// Trino's grammar (npm dt-sql-parser's TrinoSQL, an ANTLR build of Trino's SqlBase.g4) over many statements in
// one process: reads a JSON array of SQL texts on stdin and writes a JSON array of the same length on stdout,
// each entry `{statements, errors}`: how many statements the text holds and its syntax errors
// (`{line, column, message}`, none when it parses).
// Each text is parsed whole: TrinoSQL's `validate` would split a failing text at every `;`, comments included.
// Not run as it is: dt-sql-parser's ESM build cannot be imported by Node, so tools/ci/trino_grammar.py bundles
// this file with esbuild first.
import { readFileSync } from "node:fs";
import { TrinoSQL } from "dt-sql-parser";

const trino = new TrinoSQL();
const parsed = JSON.parse(readFileSync(0, "utf8")).map((sql) => {
  const errors = [];
  const tree = trino.parse(sql, ({ startLine, startColumn, message }) => {
    errors.push({ line: startLine, column: startColumn, message });
  });
  return { statements: tree.statements().length, errors };
});
process.stdout.write(JSON.stringify(parsed));
