// A non-Python client of `feedback-nlp serve`: posts to /v1/tag and checks the response against the
// service's own OpenAPI schema (a small JSON-Schema checker: no npm packages needed).
// Usage: node tests/node/tag_client.mjs http://127.0.0.1:8080 "$FEEDBACK_NLP_KEY"
const [base, key] = process.argv.slice(2);
if (!base || !key) {
  console.error("usage: node tag_client.mjs BASE_URL API_KEY");
  process.exit(2);
}

const spec = await (await fetch(`${base}/openapi.json`)).json();

function resolve(schema) {
  while (schema && schema.$ref) {
    schema = schema.$ref.replace(/^#\//, "").split("/").reduce((node, part) => node[part], spec);
  }
  return schema;
}

function typeOf(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

// Returns a list of problems ("path: what"), empty when `value` matches `schema`.
function check(value, schema, path = "$") {
  schema = resolve(schema);
  if (!schema || Object.keys(schema).length === 0) return [];
  for (const key of ["anyOf", "oneOf"]) {
    if (schema[key]) {
      const ok = schema[key].some((s) => check(value, s, path).length === 0);
      return ok ? [] : [`${path}: matches none of ${key}`];
    }
  }
  if (schema.allOf) return schema.allOf.flatMap((s) => check(value, s, path));
  const problems = [];
  const actual = typeOf(value);
  if (schema.type) {
    const allowed = [schema.type].flat();
    const fits = allowed.includes(actual) || (actual === "integer" && allowed.includes("number"));
    if (!fits) return [`${path}: expected ${allowed.join("|")}, got ${actual}`];
  }
  if (schema.enum && !schema.enum.includes(value)) problems.push(`${path}: not one of ${schema.enum}`);
  if (schema.const !== undefined && value !== schema.const) problems.push(`${path}: not ${schema.const}`);
  if (actual === "object") {
    for (const name of schema.required ?? []) {
      if (!(name in value)) problems.push(`${path}.${name}: missing`);
    }
    for (const [name, sub] of Object.entries(value)) {
      if (schema.properties && name in schema.properties) {
        problems.push(...check(sub, schema.properties[name], `${path}.${name}`));
      } else if (schema.additionalProperties === false) {
        problems.push(`${path}.${name}: not allowed`);
      } else if (typeof schema.additionalProperties === "object") {
        problems.push(...check(sub, schema.additionalProperties, `${path}.${name}`));
      }
    }
  }
  if (actual === "array" && schema.items) {
    value.forEach((item, i) => problems.push(...check(item, schema.items, `${path}[${i}]`)));
  }
  return problems;
}

const items = [
  { id: "node-1", text: "The mobile app crashes when I upload a photo" },
  { id: "node-2", text: "Could you add an export to Google Sheets?" },
];
const res = await fetch(`${base}/v1/tag`, {
  method: "POST",
  headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}` },
  body: JSON.stringify({ items }),
});
const body = await res.json();
const op = spec.paths["/v1/tag"].post;
const schema = op.responses["200"].content["application/json"].schema;
const problems = res.status === 200 ? check(body, schema) : [`status ${res.status}: ${JSON.stringify(body)}`];
if (body.results?.map((r) => r.id).join() !== "node-1,node-2") problems.push("$.results: ids not echoed in order");
// the checker itself must reject a wrong body, or it proves nothing
const broken = { ...body, results: [{ ...body.results?.[0], confidence: "high" }] };
if (check(broken, schema).length === 0) problems.push("schema checker accepted a wrong type");

const unauth = await fetch(`${base}/v1/tag`, { method: "POST", body: JSON.stringify({ items }),
  headers: { "Content-Type": "application/json" } });
const errSchema = op.responses["401"]?.content["application/json"].schema;
if (unauth.status !== 401) problems.push(`no key: status ${unauth.status}`);
else if (errSchema) problems.push(...check(await unauth.json(), errSchema, "$error"));

if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log("ok: /v1/tag response matches TagResponse and errors match ErrorBody");
