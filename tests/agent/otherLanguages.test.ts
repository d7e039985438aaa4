import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { BaselinePolicy } from "../../src/agent/baseline.js";
import { extractIssueTerms } from "../../src/agent/baseline/issueTerms.js";
import { outlineFiles } from "../../src/agent/baseline/outline.js";
import { scanRepository } from "../../src/agent/baseline/repoScan.js";
import { checkLocations } from "../../src/agent/locations.js";
import { policyContext, startSandbox, type SandboxFixture } from "../helpers/sandbox.js";

/**
 * The baseline in trees that are not Python (what a coding agent on a laptop works in): the
 * scan takes the tree's own language, definitions are read from declaration lines inside the
 * sandbox, and locations get their line ranges the same way.
 */
const TS_FILES: Record<string, string> = {
  "package.json": '{ "name": "shop" }\n',
  "src/cart.ts": [
    "import { applyDiscount } from './pricing';", // 1
    "", // 2
    "/** A shopping cart: items and their quantities. */", // 3
    "export class Cart {", // 4
    "  private items: Array<{ price: number; qty: number }> = [];", // 5
    "", // 6
    "  add(item: { price: number }, qty = 1): void {", // 7
    "    this.items.push({ price: item.price, qty });", // 8
    "  }", // 9
    "", // 10
    "  /** The sum of the items' prices times their quantities. */", // 11
    "  total(percent: number): number {", // 12
    "    const sum = this.items.reduce((s, i) => s + i.price, 0); // '}' in a comment", // 13
    "    return applyDiscount(sum, percent);", // 14
    "  }", // 15
    "}", // 16
    "", // 17
  ].join("\n"),
  "src/pricing.ts": [
    "export function applyDiscount(amount: number, percent: number): number {", // 1
    "  if (percent > 100) {", // 2
    '    throw new RangeError("discount percent must not exceed one hundred {");', // 3
    "  }", // 4
    "  return amount - (amount * percent) / 100;", // 5
    "}", // 6
    "", // 7
    "export const formatPrice = (amount: number): string => {", // 8
    "  return amount.toFixed(2);", // 9
    "};", // 10
    "", // 11
  ].join("\n"),
  "src/shipping.ts": [
    "import { formatPrice } from './pricing';",
    "export async function shippingLabel(order: { weight: number }) {",
    "  return `ship ${formatPrice(order.weight * 3)}`;",
    "}",
    "",
  ].join("\n"),
  "src/cart.test.ts": "import { Cart } from './cart';\ntest('total', () => { new Cart().total(0); });\n",
  "src/test/cartQuantity.ts": "export function totalQuantityOfEachItem(cart) {\n  return cart.total(0); // total quantity of each item\n}\n",
  // A build script in Python: the tree is TypeScript, so the scan leaves it out.
  "scripts/release.py": "def total_discount_cart():\n    return 'total discount cart quantity'\n",
  // Other languages, outlined directly.
  "other/server.go": [
    "package server", // 1
    "", // 2
    "type Server struct {", // 3
    "\tAddr string", // 4
    "}", // 5
    "", // 6
    "// Serve accepts connections.", // 7
    "func (s *Server) Serve(l net.Listener) error {", // 8
    '\tif s.Addr == "}" {', // 9
    "\t\treturn nil", // 10
    "\t}", // 11
    "\treturn accept(l)", // 12
    "}", // 13
    "", // 14
  ].join("\n"),
  "other/lib.rs": [
    "pub struct Matcher {", // 1
    "    pat: String,", // 2
    "}", // 3
    "", // 4
    "impl<'a> Display for Matcher {", // 5
    "    fn fmt(&self, f: &mut Formatter<'_>) -> Result {", // 6
    "        write!(f, \"{}\", self.pat)", // 7
    "    }", // 8
    "}", // 9
    "", // 10
    // Tests inside the file: not locations an issue names.
    "#[cfg(test)]", // 11
    "mod tests {", // 12
    "    fn helper() {}", // 13
    "}", // 14
    "#[test]", // 15
    "fn fmt_works() {", // 16
    "}", // 17
  ].join("\n"),
  "other/Gson.java": [
    "package com.google.gson;", // 1
    "", // 2
    "public final class Gson {", // 3
    "  @Override", // 4
    "  public <T> String toJson(T src, Map<String, Integer> opts) throws IOException {", // 5
    "    return write(src);", // 6
    "  }", // 7
    "}", // 8
  ].join("\n"),
  "other/request.rb": [
    "module Rack", // 1
    "  class Request", // 2
    "    def params", // 3
    "      @params ||= {}", // 4
    "    end", // 5
    "  end", // 6
    "end", // 7
  ].join("\n"),
  // Regular expressions hold quotes, a backtick and braces that are not code; "#name(" is a
  // private method.
  "other/headers.ts": [
    "const isValidName = (s: string) => /^[-\\w`'\"]+$/.test(s.trim());", // 1
    "const TOKENS = /[{]+/g;", // 2
    "", // 3
    "export class Headers {", // 4
    "  #normalize(name: string): string {", // 5
    '    return name.replace(/\\/+$/, "").toLowerCase();', // 6
    "  }", // 7
    "", // 8
    "  get(name: string, half: number) {", // 9
    "    return this.#normalize(name).length / half / 2;", // 10
    "  }", // 11
    "}", // 12
  ].join("\n"),
  // A return type over lines in brackets, and templates nested in a template's substitution.
  "other/render.ts": [
    "export function render(raw: string): [", // 1
    "  string,", // 2
    "  number,", // 3
    "] {", // 4
    "  return [`${wrap(raw)}${", // 5
    "    isTS ? ` //@ts-ignore\\n` : ``", // 6
    "  } ? ${raw}`, 1]", // 7
    "}", // 8
    "export function after() {", // 9
    "  return 1", // 10
    "}", // 11
    // Object types in the head are not the body.
    "export function misnamed(url: string): { url: string; name: string } | null {", // 12
    "  if (!url) return null;", // 13
    "  return { url, name: url };", // 14
    "}", // 15
    "export async function fetched(): Promise<{ ok: boolean }> {", // 16
    "  return { ok: true };", // 17
    "}", // 18
  ].join("\n"),
  // A raw string over lines with quotes and braces in it, and character literals that hold quotes.
  "other/flags.rs": [
    "impl Flag for Glob {", // 1
    "    fn doc_long(&self) -> &'static str {", // 2
    '        r#"', // 3
    '.BI "\\-g \'" ab{c,d}* \'', // 4
    '"#', // 5
    "    }", // 6
    "    fn quote(&self) -> char {", // 7
    "        if self.0 == '\"' { '{' } else { '\\'' }", // 8
    "    }", // 9
    "}", // 10
  ].join("\n"),
  // Java: a field's anonymous class and an enum constant's body hold methods of the enclosing
  // class; one-line bodies.
  "other/Adapters.java": [
    "public final class Adapters {", // 1
    "  private Adapters() {}", // 2
    "  public static final TypeAdapter<Class> CLASS =", // 3
    "      new TypeAdapter<Class>() {", // 4
    "        @Override", // 5
    "        public void write(JsonWriter out, Class value) {", // 6
    "          out.value(value.getName());", // 7
    "        }", // 8
    "      };", // 9
    "  public int size() { return 0; }", // 10
    "}", // 11
    "enum Naming {", // 12
    "  IDENTITY() {", // 13
    "    @Override", // 14
    "    public String translate(Field f) {", // 15
    "      return f.getName();", // 16
    "    }", // 17
    "  };", // 18
    "}", // 19
  ].join("\n"),
  // Ruby: one-line definitions, setters and operators.
  "other/headers.rb": [
    "class Headers", // 1
    "  def host;       get('HOST') end", // 2
    "  def host=(v);   set('HOST', v) end", // 3
    "  def [](key)", // 4
    "    get(key)", // 5
    "  end", // 6
    "  def ==(other) = other.to_h == to_h", // 7
    "  def close; end", // 8
    "end", // 9
  ].join("\n"),
  // Kotlin: an extension function, expression bodies (after parameters over lines too), an
  // anonymous object's method, an annotation before the keyword.
  "other/Client.kt": [
    "class Client {", // 1
    "  internal fun <T : Any> Headers.Builder.commonSet(name: String): Headers.Builder {", // 2
    "    return this", // 3
    "  }", // 4
    "  fun size(): Int = calls.size", // 5
    "  fun timeout(", // 6
    "    ms: Long,", // 7
    "  ) = apply {", // 8
    "    timeout = ms", // 9
    "  }", // 10
    "  val body =", // 11
    "    object : RequestBody() {", // 12
    "      override fun contentType() = type", // 13
    "    }", // 14
    "  companion object {", // 15
    "    fun create(): Client {", // 16
    "      return Client()", // 17
    "    }", // 18
    "  }", // 19
    "}", // 20
    "class Listener {", // 21
    "  @Synchronized fun hitCount(): Int = hits", // 22
    "  override fun dnsStart(", // 23
    "    call: Call,", // 24
    "  ) = onEvent(call)", // 25
    "}", // 26
  ].join("\n"),
  // C#: the "new" modifier, an explicit interface member, "object" as a type, a where clause,
  // an expression body.
  "other/JArray.cs": [
    "public class JArray : JContainer, IList<JToken>", // 1
    "{", // 2
    "    public new static JArray Load(JsonReader reader)", // 3
    "    {", // 4
    "        return null;", // 5
    "    }", // 6
    "    int IList<JToken>.IndexOf(JToken item)", // 7
    "    {", // 8
    "        return 0;", // 9
    "    }", // 10
    "    internal static object Get(decimal value)", // 11
    "    {", // 12
    "        return value;", // 13
    "    }", // 14
    "    public static IJEnumerable<T> Children<T>(this IEnumerable<T> source) where T : JToken", // 15
    "    {", // 16
    "        return source;", // 17
    "    }", // 18
    "    public int Count => _values.Count;", // 19
    "    public string Name() => \"x\";", // 20
    "}", // 21
  ].join("\n"),
  // C and C++: functions returning a struct or a pointer, an operator, qualifiers after the
  // parameters.
  "other/style.cc": [
    "static struct sort_entry* sort_items(jv objects, int *too_deep) {", // 1
    "  return 0;", // 2
    "}", // 3
    "namespace detail {", // 4
    "class text_style {", // 5
    " public:", // 6
    "  FMT_CONSTEXPR auto operator|=(text_style rhs) -> text_style& {", // 7
    "    return *this;", // 8
    "  }", // 9
    "  auto has_emphasis() const noexcept -> bool { return em_ != 0; }", // 10
    "  void run() {", // 11
    "    if FMT_CONSTEXPR20 (need_copy<T>::value) {", // 12
    "      go();", // 13
    "    }", // 14
    "  }", // 15
    "};", // 16
    "}", // 17
    "FILE *open_file(const char *path) {", // 18
    "  return 0;", // 19
    "}", // 20
  ].join("\n"),
  // Hostile: a declaration line of 100,000 characters and braces that never close.
  "other/hostile.js": `function ${"a".repeat(100_000)}() {\nfunction open() {\n  {{{{\n`,
  // Hostile: 20,000 blocks that never close, and as many Ruby definitions without an end
  // (read one line at a time against each, they took minutes).
  "other/deep.js": "class A {\n".repeat(10_000) + "function f() {\n".repeat(10_000),
  "other/deep.rb": "def f\n".repeat(20_000),
};

let box: SandboxFixture;
beforeAll(async () => {
  box = await startSandbox(TS_FILES);
});
afterAll(async () => {
  await box?.cleanup();
});

const localize = (issue: string, fx: SandboxFixture = box) => new BaselinePolicy().run(policyContext(fx, issue));

const exec = (argv: string[], options?: Parameters<SandboxFixture["sandbox"]["exec"]>[1]) => box.sandbox.exec(argv, options);

describe("the baseline in a TypeScript tree", () => {
  it("answers the method an issue names, in its class, with the line range of its body", async () => {
    const result = await localize("`Cart.total` ignores the quantity of each item\n\nCalling `cart.total(0)` after `cart.add(item, 3)` sums the prices once each.");
    expect(result.locations?.[0]).toMatchObject({ file: "src/cart.ts", class_name: "Cart", function_name: "total" });
    expect(result.locations?.[0]?.evidence).toContain("the issue writes `Cart.total`");
    // The test file and the Python build script are not the library.
    expect(result.locations?.some((l) => l.file.endsWith(".test.ts") || l.file.includes("test/") || l.file.endsWith(".py"))).toBe(false);
    const scanned = result.trajectory.find((s) => s.kind === "tool" && s.name === "localization_finish") as { ranked_files?: { file: string }[] } | undefined;
    expect(scanned?.ranked_files?.map((f) => f.file).filter((f) => f.includes("test/") || f.endsWith(".py"))).toEqual([]);
    const [checked] = await checkLocations(result.locations!.slice(0, 1), box.workingDir, exec);
    expect(checked).toMatchObject({ valid: true, start_line: 12, end_line: 15 });
  });

  it("follows a Node stack trace and a quoted message to the function that throws", async () => {
    const issue = [
      "Checkout crashes on a large discount",
      "```",
      "RangeError: discount percent must not exceed one hundred {",
      "    at applyDiscount (/home/dev/shop/src/pricing.ts:3:11)",
      "    at Cart.total (/home/dev/shop/src/cart.ts:14:12)",
      "    at processTicksAndRejections (node:internal/process/task_queues:95:5)",
      "```",
    ].join("\n");
    const terms = extractIssueTerms(issue);
    expect(terms.frames.map((f) => [f.path, f.func])).toEqual([
      ["home/dev/shop/src/pricing.ts", "applyDiscount"],
      ["home/dev/shop/src/cart.ts", "total"],
    ]);
    const result = await localize(issue);
    expect(result.locations?.[0]).toMatchObject({ file: "src/pricing.ts", function_name: "applyDiscount" });
    expect(result.locations?.[0]?.evidence).toEqual(expect.arrayContaining(["traceback frame: src/pricing.ts in applyDiscount", 'line 3 holds the quoted text "discount percent must not exceed one hundred"']));
  });

  it("reads paths of other languages only with a directory, and the JVM's frames under their package", () => {
    const terms = extractIssueTerms(
      "Since Node.js 20 the router in `lib/router/index.js` drops the query.\n```\njava.lang.NullPointerException\n\tat com.google.gson.Gson.toJson(Gson.java:123)\n```",
    );
    expect(terms.paths).toEqual(["com/google/gson/Gson.java", "lib/router/index.js"]);
    expect(terms.frames[0]).toMatchObject({ path: "com/google/gson/Gson.java", func: "toJson" });
  });

  it("reads Go's, Rust's, PHP's, .NET's and Ruby's stack frames, innermost first as printed", () => {
    const frames = (issue: string) => extractIssueTerms(issue).frames.map((f) => `${f.path} ${f.func}`);
    expect(frames("goroutine 1 [running]:\nmain.(*Server).Serve(0xc000010000)\n\t/home/u/app/server.go:42 +0x25\nmain.main()\n\t/home/u/app/main.go:10 +0x1d\n")).toEqual([
      "home/u/app/server.go Serve",
      "home/u/app/main.go main",
    ]);
    expect(frames("thread 'main' panicked at src/lexer.rs:12:5:\nstack backtrace:\n   3: mycrate::parser::Parser::parse_expr\n             at ./src/parser.rs:120:9\n")).toEqual(["src/parser.rs parse_expr"]);
    expect(extractIssueTerms("thread 'main' panicked at src/lexer.rs:12:5:\nindex out of bounds").paths).toEqual(["src/lexer.rs"]);
    expect(frames("#0 /var/www/src/Cart.php(12): App\\Cart->total()\n#1 /var/www/index.php(3): App\\Shop::run()")).toEqual(["var/www/src/Cart.php total", "var/www/index.php run"]);
    expect(frames("   at Shop.Cart.Total() in /src/Shop/Cart.cs:line 12")).toEqual(["src/Shop/Cart.cs Total"]);
    expect(frames("/app/lib/rack/request.rb:12:in `params'\n/app/lib/rack/lint.rb:5:in 'Rack::Lint#call'")).toEqual(["app/lib/rack/request.rb params", "app/lib/rack/lint.rb call"]);
  });

  it("reads the frame printed first as the innermost in those runtimes, and Python's last", () => {
    const depths = (issue: string) => extractIssueTerms(issue).frames.map((f) => `${f.func} ${f.depth.toFixed(2)}`);
    const node = "TypeError: x is undefined\n    at find (/app/lib/router.js:1:1)\n    at handle (/app/lib/server.js:2:2)\n    at main (/app/bin/cli.js:3:3)";
    expect(depths(node)).toEqual(["find 1.00", "handle 0.67", "main 0.33"]);
    const java = "java.lang.NullPointerException\n\tat com.a.Writer.write(Writer.java:1)\n\tat com.a.Gson.toJson(Gson.java:2)\n\tat com.a.Main.main(Main.java:3)";
    expect(depths(java)).toEqual(["write 1.00", "toJson 0.67", "main 0.33"]);
    const python = 'Traceback (most recent call last):\n  File "/app/cli.py", line 3, in main\n  File "/app/server.py", line 2, in handle\n  File "/app/router.py", line 1, in find\nValueError';
    expect(depths(python)).toEqual(["main 0.33", "handle 0.67", "find 1.00"]);
  });
});

describe("definitions of other languages, read from their lines in the sandbox", () => {
  it("finds classes, methods and their spans in Go, Rust, Java, Kotlin, C#, C++, Ruby and TypeScript, braces in strings (over lines too), comments and regular expressions aside, Java's anonymous classes and Ruby's one-line definitions read, Rust's tests left out", async () => {
    const files = ["other/server.go", "other/lib.rs", "other/Gson.java", "other/request.rb", "src/cart.ts", "src/pricing.ts", "other/headers.ts", "other/render.ts", "other/flags.rs", "other/Adapters.java", "other/headers.rb", "other/Client.kt", "other/JArray.cs", "other/style.cc"];
    const outlined = await outlineFiles(exec, box.workingDir, files, { words: ["serve", "total"], names: ["Serve"] });
    const defs = outlined.flatMap((f) => f.defs.map((d) => `${f.path} ${d.kind} ${d.cls ?? "-"}.${d.name} ${d.start}-${d.end}`));
    expect(defs).toEqual([
      "other/server.go class -.Server 3-5",
      "other/server.go def Server.Serve 8-13",
      "other/lib.rs class -.Matcher 1-3",
      "other/lib.rs class -.Matcher 5-9",
      "other/lib.rs def Matcher.fmt 6-8",
      "other/Gson.java class -.Gson 3-8",
      "other/Gson.java def Gson.toJson 5-7",
      "other/request.rb class -.Rack 1-7",
      "other/request.rb class Rack.Request 2-6",
      "other/request.rb def Rack.Request.params 3-5",
      "src/cart.ts class -.Cart 4-16",
      "src/cart.ts def Cart.add 7-9",
      "src/cart.ts def Cart.total 12-15",
      "src/pricing.ts def -.applyDiscount 1-6",
      "src/pricing.ts def -.formatPrice 8-10",
      "other/headers.ts class -.Headers 4-12",
      "other/headers.ts def Headers.#normalize 5-7",
      "other/headers.ts def Headers.get 9-11",
      "other/render.ts def -.render 1-8",
      "other/render.ts def -.after 9-11",
      "other/render.ts def -.misnamed 12-15",
      "other/render.ts def -.fetched 16-18",
      "other/flags.rs class -.Glob 1-10",
      "other/flags.rs def Glob.doc_long 2-6",
      "other/flags.rs def Glob.quote 7-9",
      "other/Adapters.java class -.Adapters 1-11",
      "other/Adapters.java def Adapters.Adapters 2-2",
      "other/Adapters.java def Adapters.write 6-8",
      "other/Adapters.java def Adapters.size 10-10",
      "other/Adapters.java class -.Naming 12-19",
      "other/Adapters.java def Naming.translate 15-17",
      "other/headers.rb class -.Headers 1-9",
      "other/headers.rb def Headers.host 2-2",
      "other/headers.rb def Headers.host= 3-3",
      "other/headers.rb def Headers.[] 4-6",
      "other/headers.rb def Headers.== 7-7",
      "other/headers.rb def Headers.close 8-8",
      "other/Client.kt class -.Client 1-20",
      "other/Client.kt def Client.commonSet 2-4",
      "other/Client.kt def Client.size 5-5",
      "other/Client.kt def Client.timeout 6-10",
      "other/Client.kt def Client.contentType 13-13",
      "other/Client.kt def Client.create 16-18",
      "other/Client.kt class -.Listener 21-26",
      "other/Client.kt def Listener.hitCount 22-22",
      "other/Client.kt def Listener.dnsStart 23-25",
      "other/JArray.cs class -.JArray 1-21",
      "other/JArray.cs def JArray.Load 3-6",
      "other/JArray.cs def JArray.IndexOf 7-10",
      "other/JArray.cs def JArray.Get 11-14",
      "other/JArray.cs def JArray.Children 15-18",
      "other/JArray.cs def JArray.Name 20-20",
      "other/style.cc def -.sort_items 1-3",
      "other/style.cc class -.detail 4-17",
      "other/style.cc class detail.text_style 5-16",
      "other/style.cc def detail.text_style.operator|= 7-9",
      "other/style.cc def detail.text_style.has_emphasis 10-10",
      "other/style.cc def detail.text_style.run 11-15",
      "other/style.cc def -.open_file 18-20",
    ]);
    const serve = outlined[0]!.defs[1]!;
    expect(serve.docTerms.get("serv")).toBe(1);
    expect(serve.ids.get("Serve")).toBe(1);
    expect(serve.calls).toEqual(["accept"]);
    expect(outlined[2]!.defs[1]!.decorators).toEqual(["Override"]);
  });

  it("gives line ranges to locations in other languages, and keeps one it cannot find valid without a range", async () => {
    const checked = await checkLocations(
      [
        { file: "other/server.go", class_name: "Server", function_name: "Serve" },
        { file: "other/request.rb", class_name: "Rack.Request" },
        { file: "other/Gson.java", function_name: "toJson" },
        { file: "other/server.go", function_name: "listen" },
      ],
      box.workingDir,
      exec,
    );
    expect(checked.map((c) => [c.valid, c.start_line, c.end_line])).toEqual([
      [true, 8, 13],
      [true, 2, 6],
      // Its annotation included, as Python's decorators are.
      [true, 4, 7],
      [true, undefined, undefined],
    ]);
  });

  it("outlines hostile files (a declaration of 100,000 characters, braces that never close, 20,000 open blocks) without failing", async () => {
    const [hostile] = await outlineFiles(exec, box.workingDir, ["other/hostile.js"], { words: [], names: [] });
    expect(hostile!.defs.map((d) => [d.name, d.start, d.end])).toEqual([["open", 2, 4]]);
    const [deepJs, deepRb] = await outlineFiles(exec, box.workingDir, ["other/deep.js", "other/deep.rb"], { words: [], names: [] });
    // Classes as deep as real code nests them, then nothing: the rest is a hostile file's.
    expect(deepJs!.defs).toHaveLength(64);
    expect(deepJs!.defs.at(-1)).toMatchObject({ kind: "class", cls: Array(63).fill("A").join("."), start: 64, end: 20_001 });
    expect(deepRb!.defs).toEqual([]);
  });
});

describe("classes whose heads other readers get wrong", () => {
  const FILES: Record<string, string> = {
    // Type parameters over lines, the body's brace after their close (zod's classes).
    "src/types.ts": [
      "export class ZodArray<", // 1
      "  T extends ZodTypeAny,", // 2
      "  Cardinality extends ArrayCardinality = \"many\"", // 3
      "> extends ZodType<", // 4
      "  arrayOutputType<T, Cardinality>,", // 5
      "  ZodArrayDef<T>", // 6
      "> {", // 7
      "  _parse(input: ParseInput): ParseReturnType<this[\"_output\"]> {", // 8
      "    return this._def.type._parse(input);", // 9
      "  }", // 10
      "}", // 11
    ].join("\n"),
    // A bound with an arrow in an impl's type parameters (clap's CompleteEnv); a trait object's impl.
    "src/env.rs": [
      "impl<'s, F: Fn() -> clap::Command> CompleteEnv<'s, F> {", // 1
      "    pub fn try_complete(self) -> bool {", // 2
      "        true", // 3
      "    }", // 4
      "}", // 5
      "", // 6
      "impl Shell for dyn Completer {", // 7
      "    /// Its name.", // 8
      "    #[inline]", // 9
      "    fn name(&self) -> &str {", // 10
      "        \"dyn\"", // 11
      "    }", // 12
      "}", // 13
      // Type parameters three brackets deep.
      "impl<T: AsRef<Vec<Option<u8>>>> Deep<T> {", // 14
      "    fn open(&self) -> bool {", // 15
      "        true", // 16
      "    }", // 17
      "}", // 18
      "impl Multi {", // 19
      "    #[cfg(any(", // 20: an attribute written over lines
      "        unix,", // 21
      "        windows,", // 22
      "    ))]", // 23
      "    fn attr(&self) -> bool {", // 24
      "        true", // 25
      "    }", // 26
      "}", // 27
    ].join("\n"),
    // A doc comment's example and a conditional's branch that read like declarations.
    "src/adapter.ts": [
      "/**", // 1
      " * Example:", // 2
      " *   public read(input: Reader) {", // 3
      " */", // 4
      "export class Adapter {", // 5
      "  read(input: Reader): unknown {", // 6
      "    return input.next();", // 7
      "  }", // 8
      "  *entries() {", // 9: a generator method, a definition though it begins with "*"
      "    yield 1;", // 10
      "  }", // 11
      "}", // 12
    ].join("\n"),
    // A comparison whose operator begins a line: a call, not a definition.
    "src/size.js": ["if (", "  process.env.LIMIT &&", "  computeSize(a)", "  > limit", ") {", "  warn();", "}", ""].join("\n"),
    // Functions assigned to an object's members (Express's response, CommonJS exports).
    "src/response.js": [
      "var res = Object.create(http.ServerResponse.prototype);", // 1
      "res.redirect = function redirect(url) {", // 2
      "  this.location(url);", // 3
      "};", // 4
      "exports.parseRange = (header) => {", // 5
      "  return header.split(',');", // 6
      "};", // 7
      "module.exports = res;", // 8
      "Router.prototype.handle = (req) => {", // 9
      "  return req;", // 10
      "};", // 11
      "exports.typed = (a: string): number => {", // 12
      "  return a.length;", // 13
      "};", // 14
    ].join("\n"),
    "src/render.ts": ["export const view = compiled", "  ? render(", "      props)", "  : fallback;", ""].join("\n"),
  };
  let heads: SandboxFixture;
  beforeAll(async () => {
    heads = await startSandbox(FILES);
  });
  afterAll(async () => {
    await heads?.cleanup();
  });

  it("reads each method's class, and names no comment or conditional a definition", async () => {
    const exec = policyContext(heads, "").exec;
    const outlined = await outlineFiles(exec, heads.workingDir, ["src/types.ts", "src/env.rs", "src/size.js", "src/response.js"], { words: [], names: [] });
    expect(outlined.flatMap((f) => f.defs.filter((d) => d.kind === "def").map((d) => `${f.path} ${d.cls}.${d.name} ${d.start}-${d.end}`))).toEqual([
      "src/types.ts ZodArray._parse 8-10",
      "src/env.rs CompleteEnv.try_complete 2-4",
      "src/env.rs Completer.name 10-12",
      "src/env.rs Deep.open 15-17",
      "src/env.rs Multi.attr 24-26",
      "src/response.js res.redirect 2-4",
      "src/response.js null.parseRange 5-7",
      "src/response.js Router.handle 9-11",
      "src/response.js null.typed 12-14",
    ]);
    // Its attribute is in its span, as a Java annotation or a Python decorator is; its doc comment is not.
    expect(outlined[1]!.defs.find((d) => d.name === "name")?.first).toBe(9);
    expect(outlined[1]!.defs.find((d) => d.name === "attr")?.first).toBe(20);
    const scan = await scanRepository(exec, heads.workingDir, { words: ["read", "render", "entries"], names: ["read", "render", "entries"], phrases: [] });
    const defs = Object.fromEntries(scan.files.map((f) => [f.path, f.defs.map((d) => `${d.name} ${d.line}`)]));
    expect(defs["src/adapter.ts"]).toEqual(["read 6", "entries 9"]);
    expect(defs["src/render.ts"] ?? []).toEqual([]);
  });
});

describe("the baseline in a Java tree", () => {
  // Gson's pattern: each type's adapter is a field holding an anonymous class.
  const JAVA_FILES: Record<string, string> = {
    "src/main/java/com/acme/Adapters.java": [
      "package com.acme;", // 1
      "", // 2
      "public final class Adapters {", // 3
      "  private Adapters() {}", // 4
      "", // 5
      "  public static final TypeAdapter<Currency> CURRENCY =", // 6
      "      new TypeAdapter<Currency>() {", // 7
      "        @Override", // 8
      "        public void write(JsonWriter out, Currency value) {", // 9
      "          out.value(value.getCurrencyCode());", // 10
      "        }", // 11
      "      };", // 12
      "}", // 13
    ].join("\n"),
    "src/main/java/com/acme/TypeAdapter.java": [
      "package com.acme;",
      "",
      "public abstract class TypeAdapter<T> {",
      "  public abstract void write(JsonWriter out, T value);",
      "}",
    ].join("\n"),
    "src/main/java/com/acme/Nested.java": [
      "package com.acme;", // 1
      "", // 2
      "public final class A {", // 3
      "  static final class Inner {", // 4
      "    int run() {", // 5
      "      return 1;", // 6
      "    }", // 7
      "  }", // 8
      "}", // 9
      "", // 10
      "final class B {", // 11
      "  static final class Inner {", // 12
      "    int run() {", // 13
      "      return 2;", // 14
      "    }", // 15
      "  }", // 16
      "}", // 17
    ].join("\n"),
    // Overloads: one name, one class, two definitions.
    "src/main/java/com/acme/Reader.java": [
      "package com.acme;", // 1
      "", // 2
      "public final class Reader {", // 3
      "  public <T> T fromJson(String json, Class<T> type) {", // 4
      "    return fromJson(new StringReader(json), type);", // 5
      "  }", // 6
      "", // 7
      "  public <T> T fromJson(java.io.Reader in, Class<T> type) {", // 8
      "    JsonReader reader = new JsonReader(in);", // 9
      "    return read(reader, type);", // 10
      "  }", // 11
      "}", // 12
    ].join("\n"),
  };
  let java: SandboxFixture;
  beforeAll(async () => {
    java = await startSandbox(JAVA_FILES);
  });
  afterAll(async () => {
    await java?.cleanup();
  });

  it("reads the methods of a field's anonymous class as the enclosing class's, and answers the one the issue names", async () => {
    const result = await localize("Currency adapter writes the currency code for a null `Currency`\n\n`TypeAdapter.write` in `Adapters.CURRENCY` calls `getCurrencyCode` on a null value.", java);
    expect(result.locations?.[0]).toMatchObject({ file: "src/main/java/com/acme/Adapters.java", class_name: "Adapters", function_name: "write" });
    const [checked] = await checkLocations(result.locations!.slice(0, 1), java.workingDir, policyContext(java, "").exec);
    expect(checked).toMatchObject({ valid: true, start_line: 8, end_line: 11 });
  });

  it("takes a span that names another class's method only where the class named is not in the file", async () => {
    // Two Inner classes, each with run(); the location names A's, with B's span.
    const exec = policyContext(java, "").exec;
    const named = { file: "src/main/java/com/acme/Nested.java", class_name: "A.Inner", function_name: "run" };
    const [checked, short] = await checkLocations([{ ...named, start_line: 13, end_line: 15 }, { ...named, class_name: "Inner", start_line: 13, end_line: 15 }], java.workingDir, exec);
    expect(checked).toMatchObject({ valid: true, start_line: 5, end_line: 7 });
    // A short class name: the span names which Inner.
    expect(short).toMatchObject({ valid: true, start_line: 13, end_line: 15 });
  });

  it("gives an overload the span the policy named, not the first definition of that name", async () => {
    const location = { file: "src/main/java/com/acme/Reader.java", class_name: "Reader", function_name: "fromJson" };
    const checked = await checkLocations([{ ...location, start_line: 8, end_line: 11 }, location, { ...location, start_line: 5, end_line: 11 }], java.workingDir, policyContext(java, "").exec);
    expect(checked.map((c) => [c.valid, c.start_line, c.end_line])).toEqual([
      [true, 8, 11],
      // No span, or one that is no definition's: the first of the name, as before.
      [true, 4, 6],
      [true, 4, 6],
    ]);
  });
});

describe("the baseline in a C++ tree with Python helper scripts", () => {
  // fmt's shape: a few large headers, and as many small scripts beside them. Counted by files,
  // the scripts made it a Python tree; by size (each file up to 64 KiB) it is C++.
  const filler = (what: string) => Array.from({ length: 120 }, (_, i) => `// ${what}: note ${i} on buffers, widths and locales.`).join("\n");
  const CPP_FILES: Record<string, string> = {
    "include/lib/format.h": [
      "#pragma once", // 1
      "namespace lib {", // 2
      "inline char* format_to(char* out, const char* fmt, int width) {", // 3
      "  for (int i = 0; i < width; ++i) *out++ = ' ';", // 4
      "  return out;", // 5
      "}", // 6
      "}  // namespace lib", // 7
      filler("format"),
    ].join("\n"),
    "include/lib/chrono.h": ["#pragma once", "namespace lib {", "inline int format_duration(int s) { return s; }", "}", filler("chrono")].join("\n"),
    "include/lib/ostream.h": ["#pragma once", "namespace lib {", "inline void print(int v) {}", "}", filler("ostream")].join("\n"),
    "src/format.cc": ['#include "lib/format.h"', "namespace lib {", "int width_of(const char* s) { return 0; }", "}", filler("source")].join("\n"),
    "support/release.py": "def format_release(width):\n    return 'format to width'\n",
    "support/docs.py": "def build_docs():\n    return 'docs'\n",
    "support/bloat.py": "def measure_width():\n    return 0\n",
  };
  let cpp: SandboxFixture;
  beforeAll(async () => {
    cpp = await startSandbox(CPP_FILES);
  });
  afterAll(async () => {
    await cpp?.cleanup();
  });

  it("reads the tree as C++ and answers the header's function, not a script", async () => {
    const result = await localize("`format_to` writes past the end of the buffer when the width is larger than the output\n\nCalling `lib::format_to(buf, \"{}\", 80)` on a 64-byte buffer overflows it.", cpp);
    expect(result.locations?.[0]).toMatchObject({ file: "include/lib/format.h", function_name: "format_to" });
    expect(result.locations?.some((l) => l.file.endsWith(".py"))).toBe(false);
  });
});
