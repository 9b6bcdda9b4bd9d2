// A smoke test of a client generated from GET /v1/openapi.json by
// openapi-typescript, driven by openapi-fetch against a real `fieldcrm serve`
// (FIELDCRM_URL). cmd/fieldcrm's TestGeneratedOpenAPIClient generates
// schema.d.ts next to a copy of this file, type-checks both with
// tsc --strict, and runs it. It uses only what the document says: the
// paths, query parameters, bodies, enumerations and headers.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Customer = components["schemas"]["Customer"];

// Node's global, declared here rather than through @types/node.
declare const process: { env: Record<string, string | undefined> };

const baseUrl = process.env.FIELDCRM_URL;
if (!baseUrl) throw new Error("set FIELDCRM_URL to the server's address");

// List filters that take several values are comma-separated (the document
// says style form, explode false).
const querySerializer = { array: { style: "form", explode: false } } as const;

function check(ok: boolean, what: string): asserts ok {
  if (!ok) throw new Error("failed: " + what);
}

// Never called: it only has to fail to compile when the document loses its
// enumerations or required fields.
function typesCarryTheRules(api: ReturnType<typeof createClient<paths>>): void {
  // @ts-expect-error stage is an enumeration
  void api.POST("/v1/customers", { body: { name: "x", stage: "nonsense" } });
  // @ts-expect-error an interaction needs its customer_id and channel
  void api.POST("/v1/interactions", { body: { content: "hello" } });
  // @ts-expect-error limit is a number
  void api.GET("/v1/customers", { params: { query: { limit: "5" } } });
}
void typesCarryTheRules;

const anonymous = createClient<paths>({ baseUrl, querySerializer });
const email = `openapi-${Date.now()}@client.example`;
const signup = await anonymous.POST("/v1/auth/signup", {
  body: { company_name: "Generated Client Co", name: "Gene Rated", email, password: "correct horse battery" },
});
check(signup.response.status === 201 && signup.data !== undefined, "sign up: " + JSON.stringify(signup.error));
const token: string = signup.data.access_token;

const api = createClient<paths>({ baseUrl, querySerializer, headers: { Authorization: `Bearer ${token}` } });

const created: Customer[] = [];
for (const [name, stage] of [["Alpha Trading", "lead"], ["Beta Foods", "lead"], ["Gamma Tools", "lead"], ["Delta Retail", "customer"]] as const) {
  const res = await api.POST("/v1/customers", { body: { name, stage } });
  check(res.data !== undefined, "create " + name + ": " + JSON.stringify(res.error));
  check(res.response.headers.get("ETag") === `"${res.data.version}"`, "ETag of " + name);
  created.push(res.data);
}

// A filter and paging: two leads a page, sorted by name.
const seen: string[] = [];
let after: string | undefined;
for (let page = 0; page < 5; page++) {
  const res = await api.GET("/v1/customers", {
    params: { query: { stage: ["lead"], sort: "name", limit: 2, after } },
  });
  check(res.data !== undefined, "list: " + JSON.stringify(res.error));
  seen.push(...(res.data.data ?? []).map((c) => c.name));
  if (res.data.next_after == null) break;
  after = res.data.next_after;
}
check(JSON.stringify(seen) === JSON.stringify(["Alpha Trading", "Beta Foods", "Gamma Tools"]), "leads by name: " + seen.join(", "));

// Several values of one filter.
const both = await api.GET("/v1/customers", { params: { query: { stage: ["lead", "customer"], limit: 10 } } });
check(both.data?.data?.length === 4, "leads and customers: " + JSON.stringify(both.data ?? both.error));

// A change with If-Match: the stale version is refused with 412.
const alpha = created[0]!;
const edited = await api.PATCH("/v1/customers/{id}", {
  params: { path: { id: alpha.id }, header: { "If-Match": `"${alpha.version}"` } },
  body: { industry: "retail" },
});
check(edited.data?.industry === "retail", "edit: " + JSON.stringify(edited.error));
const stale = await api.PATCH("/v1/customers/{id}", {
  params: { path: { id: alpha.id }, header: { "If-Match": `"${alpha.version}"` } },
  body: { industry: "food" },
});
check(stale.response.status === 412 && stale.error?.type === "/problems/stale-version", "stale edit: " + stale.response.status);

// An undeclared parameter is refused with a problem naming it.
const typo = await api.GET("/v1/customers", { params: { query: { stagee: "lead" } as never } });
check(typo.response.status === 422 && typo.error?.errors?.[0]?.field === "stagee", "undeclared parameter: " + JSON.stringify(typo.error));

// A first pull, then one from its timestamp.
const first = await api.GET("/v1/sync/pull", { params: { query: { schema_version: 1 } } });
check(first.data !== undefined, "pull: " + JSON.stringify(first.error));
check(first.response.headers.get("X-Sync-Has-More") === String(first.data.has_more), "X-Sync-Has-More");
const pulled = first.data.changes?.["customers"]?.created ?? [];
check(pulled.length === 4, "first pull's customers: " + pulled.length);
const next = await api.GET("/v1/sync/pull", { params: { query: { last_pulled_at: first.data.timestamp } } });
check(next.data !== undefined && next.data.changes?.["customers"]?.created?.length === 0, "second pull: " + JSON.stringify(next.data ?? next.error));

console.log(`generated client: signed up, created ${created.length} customers, paged ${seen.length} leads, pulled ${pulled.length}`);
