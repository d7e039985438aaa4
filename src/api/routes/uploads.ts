import { Readable } from "node:stream";
import { errorCodes } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { UPLOAD_ID_RE } from "../../queue/contract.js";
import { ArchiveError, readArchive } from "../../uploads/archive.js";
import { uploadInfoSchema, UploadStoreFailed, UploadStoreFull, type StagedUpload } from "../../uploads/store.js";
import { ApiError } from "../errors.js";
import { API_KEY, commonErrors, errorResponse } from "../schemas.js";
import type { AppContext } from "../context.js";

/**
 * Working trees sent by clients (a local checkout that was never pushed, or has edits):
 * POST a tar or tar.gz, get back its content address, then localize `repo: {upload: id}`.
 * The archive is checked entry by entry while it streams in and stored only when all of it
 * passed; a refused upload leaves nothing behind.
 */
const ARCHIVE_TYPES = ["application/gzip", "application/x-gzip", "application/x-tar", "application/x-gtar", "application/octet-stream"];

const uploadParamsSchema = z.object({ id: z.string().regex(UPLOAD_ID_RE, "an upload id is 64 lowercase hex characters") });

const uploadExample = {
  upload_id: "9f2b6c1e0d4a7b3c5e8f1a2d4c6b8e0f1a3c5e7d9b2f4a6c8e0d2b4f6a8c0e2d",
  sha256: "9f2b6c1e0d4a7b3c5e8f1a2d4c6b8e0f1a3c5e7d9b2f4a6c8e0d2b4f6a8c0e2d",
  files: 412,
  bytes: 5_843_211,
  archive_bytes: 1_204_733,
  expires_at: "2026-11-25T12:00:00.000Z",
};

const isStream = (body: unknown): body is Readable => body instanceof Readable;

export const uploadRoutes: FastifyPluginAsyncZod<AppContext> = async (app, ctx) => {
  const { config, uploads, uploadGrants, limits } = ctx;
  // The body stays a stream: archives are read as they arrive, never buffered whole here.
  app.addContentTypeParser(ARCHIVE_TYPES, (_request, payload, done) => done(null, payload));

  app.post(
    "/v1/uploads",
    {
      onRequest: ctx.authenticate,
      schema: {
        operationId: "upload",
        summary: "Upload a working tree (tar or tar.gz)",
        description: `The body is the archive itself (content-type application/gzip or application/x-tar). Only regular files, directories and symlinks that stay inside the tree are accepted; absolute paths, \`..\`, paths through symlinks, hard links, devices, fifos, sparse files and \`.git\` are refused, as is going past UPLOAD_MAX_ARCHIVE_BYTES (${config.UPLOAD_MAX_ARCHIVE_BYTES}), UPLOAD_MAX_BYTES (${config.UPLOAD_MAX_BYTES}) unpacked, UPLOAD_MAX_FILES (${config.UPLOAD_MAX_FILES}), UPLOAD_MAX_PATH_BYTES (${config.UPLOAD_MAX_PATH_BYTES}) or a compression ratio of UPLOAD_MAX_RATIO (${config.UPLOAD_MAX_RATIO}). The id is the tree's content address (the same tree is stored once): ask GET /v1/uploads/{id} first to skip sending a tree the service already has from this API key (another key's uploads are not this key's: each sends its own).`,
        tags: ["uploads"],
        security: API_KEY,
        response: {
          200: uploadInfoSchema.describe("This key had already sent the same tree; its lifetime was renewed.").meta({ examples: [uploadExample] }),
          201: uploadInfoSchema.describe("The tree was stored.").meta({ examples: [uploadExample] }),
          401: commonErrors.unauthorized,
          413: errorResponse("The archive, or the tree in it, is larger than the server takes (upload_too_large), or holding it would take the API key past its share of the store, UPLOAD_KEY_MAX_MB (upload_quota_exceeded, with Retry-After: when the key's first upload is dropped).", "upload_too_large", "the archive holds more than 536870912 bytes", "body"),
          415: errorResponse("The body is not sent as application/gzip or application/x-tar.", "unsupported_media_type", "content type text/plain is not accepted here: send application/gzip or application/x-tar"),
          422: errorResponse("The archive is not a readable tar, or holds an entry that is refused (named in the message).", "upload_unsafe_path", "../../etc/cron.d/x: paths with .. are not accepted", "body"),
          429: commonErrors.submitLimited,
          503: errorResponse("The service could not keep the upload (its disk or its Redis); retry after Retry-After.", "upload_store_unavailable", "the upload store could not keep the upload: EFBIG: file too large, writev"),
        },
      },
    },
    async (request, reply) => {
      // JSON has the app's own parser, so it arrives here parsed: refused as any other type is.
      if (!isStream(request.body)) throw new errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE(String(request.headers["content-type"]));
      await limits.takeRequest(request.owner);
      const declared = Number(request.headers["content-length"] ?? 0);
      if (declared > config.UPLOAD_MAX_ARCHIVE_BYTES) {
        reply.header("connection", "close");
        throw new ApiError(413, "upload_too_large", `the archive has ${declared} bytes; the limit is ${config.UPLOAD_MAX_ARCHIVE_BYTES}`, "body");
      }
      const body = request.body as Readable;
      const staged = await uploads.stage().catch((err: unknown) => Promise.reject(refusal(new UploadStoreFailed(err), config.UPLOAD_MAX_ARCHIVE_BYTES)));
      let kept;
      let undoCharge = async () => undefined as void;
      try {
        const summary = await readArchive(copyInto(body, staged, config.UPLOAD_MAX_ARCHIVE_BYTES), {
          maxBytes: config.UPLOAD_MAX_BYTES,
          maxFiles: config.UPLOAD_MAX_FILES,
          maxPathBytes: config.UPLOAD_MAX_PATH_BYTES,
          maxRatio: config.UPLOAD_MAX_RATIO,
        });
        // Counted before the store keeps it: a tree refused here must not be kept with no key holding it.
        const share = await uploadGrants.charge(summary.sha256, request.owner, summary.archiveBytes);
        if (!share.ok) throw pastShare(summary.archiveBytes, share, config.UPLOAD_KEY_MAX_MB);
        undoCharge = share.undo;
        kept = await staged.commit(summary);
      } catch (err) {
        await undoCharge();
        await staged.abort().catch(() => undefined);
        body.destroy();
        reply.header("connection", "close");
        throw refusal(err, config.UPLOAD_MAX_ARCHIVE_BYTES);
      }
      const { info } = kept;
      // Sent by this key: its to use, whoever sent the same tree before. Stored anew, to this key,
      // when it had not sent it: "already stored" told a key that another had sent that tree.
      const created = kept.created || !(await uploadGrants.holds(info.upload_id, request.owner));
      await uploadGrants.grant(info.upload_id, request.owner, kept.created);
      request.log.info({ upload: info.upload_id, files: info.files, bytes: info.bytes, created }, "upload stored");
      return reply.code(created ? 201 : 200).send(info);
    },
  );

  app.get(
    "/v1/uploads/:id",
    {
      onRequest: ctx.authenticate,
      // The HEAD Fastify adds is what a client asks before sending a tree: the document names it too.
      config: { swagger: { exposeHeadRoute: true } },
      schema: {
        operationId: "getUpload",
        summary: "Whether the service holds an uploaded tree",
        description: "Renews the upload's lifetime. A client computes the id of its tree locally (see README) and skips the upload when this answers 200.",
        tags: ["uploads"],
        security: API_KEY,
        params: uploadParamsSchema,
        response: {
          200: uploadInfoSchema.describe("The tree is stored; use its id as repo.upload.").meta({ examples: [uploadExample] }),
          401: commonErrors.unauthorized,
          404: errorResponse("No such upload from this API key (never sent by it, or expired).", "upload_not_found", `no upload ${uploadExample.upload_id} (never sent, or expired)`, "id"),
          422: errorResponse("The id is not 64 lowercase hex characters.", "validation_failed", "params.id: an upload id is 64 lowercase hex characters", "params.id"),
          429: commonErrors.readLimited,
          503: commonErrors.unavailable,
        },
      },
    },
    async (request) => {
      await limits.takePoll(request.owner);
      // Another key's upload answers as one never sent: its GET told a key that someone had sent that tree, and renewed it.
      const info = (await uploadGrants.holds(request.params.id, request.owner)) ? await uploads.touch(request.params.id) : null;
      if (!info) throw new ApiError(404, "upload_not_found", `no upload ${request.params.id} (never sent, or expired)`, "id");
      return info;
    },
  );
};

/** The request body as it arrives, copied into the store's staging area, cut at the cap. */
async function* copyInto(body: Readable, staged: StagedUpload, max: number): AsyncGenerator<Buffer> {
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new ApiError(413, "upload_too_large", `the archive is larger than ${max} bytes`, "body");
    await staged.write(chunk);
    yield chunk;
  }
}

const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

function pastShare(bytes: number, share: { held: number; freedAt: number }, maxMb: number): ApiError {
  const wait = Math.max(1, Math.ceil((share.freedAt - Date.now()) / 1000));
  return new ApiError(
    413,
    "upload_quota_exceeded",
    `this API key holds ${mb(share.held)} MB of uploads and this one is ${mb(bytes)} MB: past its share of the store, UPLOAD_KEY_MAX_MB (${maxMb}). An upload is dropped UPLOAD_TTL_S after its last use, the first of this key's at ${new Date(share.freedAt).toISOString()}; meanwhile send changes as repo.patch on a tree already sent`,
    "body",
    { "retry-after": String(wait) },
  );
}

function refusal(err: unknown, max: number): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof UploadStoreFull) return new ApiError(413, "upload_too_large", err.message, "body");
  // The service's own failure: retried, the same archive may well be kept.
  if (err instanceof UploadStoreFailed) return new ApiError(503, "upload_store_unavailable", err.message, undefined, { "retry-after": "5" });
  if (err instanceof ArchiveError) {
    if (err.code === "too_large") return new ApiError(413, "upload_too_large", err.message, "body");
    return new ApiError(422, `upload_${err.code}`, err.message, "body");
  }
  return new ApiError(422, "upload_invalid_archive", `the upload could not be read (at most ${max} bytes of tar or tar.gz): ${(err as Error).message}`, "body");
}
