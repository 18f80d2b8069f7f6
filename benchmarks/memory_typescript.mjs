// The TypeScript package's searchFactsSemantic, timed on a database benchmarks/memory.py filled.
//
//   bun benchmarks/memory_typescript.mjs <dir> <sqlite|postgresql> <path or URL> <workspace> <queries.json> <top_k>
//
// <dir> holds node_modules/@obsku/checkpoint-sqlite and -postgres (see docs/performance.md).
// Prints, as JSON, each search's milliseconds and the ids the first search found (it returns no scores).
const [dir, backend, target, workspaceId, queryFile, topK] = process.argv.slice(2);
const name = backend === "sqlite" ? "checkpoint-sqlite" : "checkpoint-postgres";
const module = await import(`${dir}/node_modules/@obsku/${name}/dist/index.js`);
const store = backend === "sqlite" ? new module.SqliteCheckpointStore(target) : new module.PostgresCheckpointStore(target);
const queries = JSON.parse(await Bun.file(queryFile).text());
const ms = [];
let first = null;
for (const query of queries) {
  const started = performance.now();
  const found = await store.searchFactsSemantic(query, { topK: Number(topK), workspaceId });
  ms.push(performance.now() - started);
  first ??= found.map((fact) => fact.id);
}
await store.close();
console.log(JSON.stringify({ ms, first }));
