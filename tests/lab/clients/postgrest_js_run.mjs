// Drives the gateway with the official postgrest-js client, unmodified.
//
// Environment: GATEWAY_URL (https://...), GATEWAY_TOKEN (a bearer JWT),
// POSTGREST_JS_PREFIX (the npm prefix holding @supabase/postgrest-js) and
// NODE_EXTRA_CA_CERTS (the lab CA, read by Node itself). Prints one JSON
// object: each operation's name mapped to what the client returned.
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(join(process.env.POSTGREST_JS_PREFIX, "package.json"));
const { PostgrestClient } = require("@supabase/postgrest-js");

const client = new PostgrestClient(process.env.GATEWAY_URL, {
  schema: "api",
  headers: { Authorization: `Bearer ${process.env.GATEWAY_TOKEN}` },
});

// Each operation, in order: writes depend on the rows earlier ones leave.
const operations = {
  select_columns: () => client.from("customers").select("id,name").order("id"),
  eq: () => client.from("orders").select("id").eq("customer_id", 1).order("id"),
  gt_order_limit: () =>
    client
      .from("orders")
      .select("id,total")
      .gt("total", 8)
      .order("total", { ascending: false })
      .limit(1),
  in: () => client.from("orders").select("id").in("id", [10, 12]).order("id"),
  like: () => client.from("customers").select("name").like("name", "G%"),
  count_exact: () =>
    client.from("orders").select("id", { count: "exact" }).order("id").limit(2),
  count_head: () =>
    client.from("orders").select("*", { count: "exact", head: true }),
  range: () => client.from("orders").select("id").order("id").range(1, 2),
  single: () => client.from("customers").select("name").eq("id", 1).single(),
  single_of_many: () => client.from("customers").select("name").single(),
  maybe_single_none: () =>
    client.from("customers").select("name").eq("id", 999).maybeSingle(),
  embed: () => client.from("customers").select("name,orders(id)").eq("id", 1),
  insert: () =>
    client.from("customers").insert({ id: 20, name: "Js" }).select(),
  insert_many: () =>
    client.from("customers").insert([
      { id: 21, name: "Js 21" },
      { id: 22, name: "Js 22" },
    ]),
  insert_single: () =>
    client.from("customers").insert({ id: 23, name: "Js 23" }).select("id").single(),
  after_insert_single: () => client.from("customers").select("id").eq("id", 23),
  update_single_of_many: () =>
    client.from("customers").update({ name: "Both" }).in("id", [21, 22]).select().single(),
  after_update_single_of_many: () =>
    client.from("customers").select("name").in("id", [21, 22]).order("id"),
  update: () =>
    client.from("customers").update({ name: "Js 20" }).eq("id", 20).select(),
  delete: () =>
    client.from("customers").delete().in("id", [20, 21, 22, 23]).select("id"),
  rpc: () => client.rpc("add", { a: 2, b: 40 }),
  missing_table: () => client.from("nope").select(),
};

const results = {};
for (const [name, run] of Object.entries(operations)) {
  const { data, error, count, status } = await run();
  results[name] = { data, error, count, status };
}
console.log(JSON.stringify(results));
