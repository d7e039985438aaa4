import { BlockList, isIP } from "node:net";

/**
 * Host names and addresses, judged the same way wherever the service connects on a
 * client's behalf: one normalization of every spelling, and every special-use range.
 * Pure: no lookups here (hostPolicy.ts resolves).
 */
export class InvalidHostError extends Error {
  override name = "InvalidHostError";
}

const v4 = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8],
  ["169.254.0.0", 16], // link-local, cloud metadata
  ["172.16.0.0", 12],
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // TEST-NET-1
  ["192.88.99.0", 24], // 6to4 relay anycast
  ["192.168.0.0", 16],
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // TEST-NET-2
  ["203.0.113.0", 24], // TEST-NET-3
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, and 255.255.255.255
] as const)
  v4.addSubnet(net, bits, "ipv4");

const v6 = new BlockList();
for (const [net, bits] of [
  ["::", 96], // unspecified, loopback, IPv4-compatible (deprecated)
  ["64:ff9b:1::", 48], // local-use NAT64
  ["100::", 64], // discard
  ["2001::", 23], // IETF protocol assignments, Teredo (which hides the real address), ORCHID
  ["2001:db8::", 32], // documentation
  ["fc00::", 7], // unique local
  ["fe80::", 10], // link-local
  ["fec0::", 10], // site-local (deprecated)
  ["ff00::", 8], // multicast
] as const)
  v6.addSubnet(net, bits, "ipv6");

/** The 16 bytes of an IPv6 address (with or without an embedded dotted quad), or null. */
function ipv6Bytes(address: string): number[] | null {
  let text = address.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let tail: number[] = [];
  if (dotted) {
    tail = dotted[1]!.split(".").map(Number);
    text = `${text.slice(0, -dotted[1]!.length)}0:0`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const parse = (s: string) => (s ? s.split(":").map((g) => parseInt(g, 16)) : []);
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const groups = halves.length === 2 ? [...head, ...Array(8 - head.length - rest.length).fill(0), ...rest] : head;
  if (groups.length !== 8 || groups.some((g) => !Number.isInteger(g) || g < 0 || g > 0xffff)) return null;
  const bytes = groups.flatMap((g) => [g >> 8, g & 0xff]);
  if (dotted) bytes.splice(12, 4, ...tail);
  return bytes;
}

/** The IPv4 address an IPv6 address carries (mapped, translated, NAT64, 6to4), judged in its place. */
function embeddedV4(address: string): string | null {
  const b = ipv6Bytes(address);
  if (!b) return null;
  const zero = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) return b.slice(12, 16).join("."); // ::ffff:0:0/96
  if (zero(0, 8) && b[8] === 0xff && b[9] === 0xff && zero(10, 12)) return b.slice(12, 16).join("."); // ::ffff:0:0:0/96, IPv4-translated (SIIT)
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zero(4, 12)) return b.slice(12, 16).join("."); // 64:ff9b::/96
  if (b[0] === 0x20 && b[1] === 0x02) return b.slice(2, 6).join("."); // 2002::/16
  return null;
}

/** True for any address the service must not connect to on a client's behalf. */
export function isBlockedAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, "").split("%")[0]!;
  const family = isIP(bare);
  if (family === 4) return v4.check(bare, "ipv4");
  if (family !== 6) return true;
  const inner = embeddedV4(bare);
  if (inner !== null) return v4.check(inner, "ipv4");
  return v6.check(bare, "ipv6");
}

/**
 * A host as the service compares and connects to it: lowercase, no brackets, no trailing
 * dot, IDN as punycode (with Unicode look-alikes mapped), and every IPv4 spelling
 * (`127.1`, `0177.0.0.1`, `0x7f.1`, `2130706433`) as a dotted quad, by the WHATWG URL
 * host parser. Throws for a host that does not parse.
 */
export function normalizeHost(raw: string): string {
  let host: string;
  try {
    host = new URL(`http://${raw.includes(":") && !raw.startsWith("[") ? `[${raw}]` : raw}/`).hostname;
  } catch {
    throw new InvalidHostError(`${raw} is not a valid host name`);
  }
  host = host.replace(/^\[|\]$/g, "").replace(/\.+$/, "").toLowerCase();
  if (!host) throw new InvalidHostError(`${raw} is not a valid host name`);
  return host;
}
