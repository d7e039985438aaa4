import { spawn } from "node:child_process";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";

/**
 * Git's own smart-HTTP server (git-http-backend as a CGI behind Node's http server), serving
 * the bare repositories under `root`, on the address the test picks. Every request it
 * receives is recorded, so a test can assert that a refused URL never reached it. With
 * `redirectTo` it answers every request with a 302 there instead; with `auth` it wants that
 * Authorization header. With `fault`, a request it names (by its place among all requests, 0
 * first) is answered with that HTTP status, or cut off halfway through its body ("cut"), as a
 * remote having a bad minute does. With `hold`, a POST is passed on to git only once the
 * promise `hold` returns for its body resolves (a slow clone, while other requests go on).
 */
export interface GitHttpServer {
  url(repo?: string): string;
  port: number;
  requests: Array<{ method: string; url: string; headers: IncomingHttpHeaders }>;
  close(): Promise<void>;
}

export type GitHttpFault = number | "cut" | undefined;

export async function startGitHttpServer(options: {
  root: string;
  host?: string;
  redirectTo?: string;
  auth?: string;
  fault?: (index: number, request: { method: string; url: string }) => GitHttpFault;
  hold?: (request: { url: string; body: string }) => Promise<void> | undefined;
}): Promise<GitHttpServer> {
  const requests: GitHttpServer["requests"] = [];
  const server: Server = createServer((req, res) => {
    const fault = options.fault?.(requests.length, { method: req.method ?? "", url: req.url ?? "" });
    requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
    if (typeof fault === "number") {
      req.resume();
      res.writeHead(fault).end();
      return;
    }
    if (options.redirectTo) {
      res.writeHead(302, { location: `${options.redirectTo}${req.url ?? ""}` }).end();
      return;
    }
    if (options.auth && req.headers.authorization !== options.auth) {
      res.writeHead(401, { "www-authenticate": 'Basic realm="git"' }).end();
      return;
    }
    const [path = "", query = ""] = (req.url ?? "").split("?");
    const cgi = spawn("/usr/lib/git-core/git-http-backend", [], {
      env: {
        GIT_PROJECT_ROOT: options.root,
        GIT_HTTP_EXPORT_ALL: "1",
        PATH_INFO: path,
        QUERY_STRING: query,
        REQUEST_METHOD: req.method ?? "GET",
        CONTENT_TYPE: req.headers["content-type"] ?? "",
        REMOTE_USER: "x-access-token",
      },
    });
    if (options.hold && req.method === "POST") {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        void Promise.resolve(options.hold!({ url: req.url ?? "", body: body.toString("latin1") })).then(() => cgi.stdin.end(body));
      });
    } else req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let sent = false;
    cgi.stdout.on("data", (chunk: Buffer) => {
      if (sent) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      const headers: Record<string, string> = {};
      let status = 200;
      for (const line of head.subarray(0, end).toString().split("\r\n")) {
        const [k, ...v] = line.split(":");
        if (!k) continue;
        if (k.toLowerCase() === "status") status = Number(v.join(":").trim().split(" ")[0]);
        else headers[k] = v.join(":").trim();
      }
      res.writeHead(status, headers);
      const body = head.subarray(end + 4);
      if (fault === "cut") {
        // Half of what the body starts with, then the connection closes: a response cut short.
        res.write(body.subarray(0, body.length >> 1), () => res.socket?.destroy());
        cgi.stdout.destroy();
        return;
      }
      res.write(body);
      sent = true;
    });
    cgi.on("close", () => res.end());
  });
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((r) => server.listen(0, host, r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    requests,
    url: (repo = "repo.git") => `http://${host}:${port}/${repo}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
