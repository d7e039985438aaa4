import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { KEY_SIGNATURE_HEADER, keyWebhookSecret } from "../../queue/webhookSigning.js";
import type { AppContext } from "../context.js";
import { ApiError } from "../errors.js";
import { API_KEY, commonErrors, errorResponse } from "../schemas.js";

const secretSchema = z.object({
  secret: z.string().describe("HMAC-SHA256 key of the signature in the header named below, on the webhooks of this API key's jobs alone."),
  header: z.literal(KEY_SIGNATURE_HEADER),
});

/** GET /v1/webhook-secret: the asking key's own webhook secret, to check its webhooks with. */
export const webhookSecretRoutes: FastifyPluginAsyncZod<AppContext> = async (app, ctx) => {
  const { config, limits } = ctx;
  app.get(
    "/v1/webhook-secret",
    {
      onRequest: ctx.authenticate,
      schema: {
        operationId: "getWebhookSecret",
        summary: "This API key's own webhook secret",
        description: `The key the webhooks of this API key's jobs are signed with, in ${KEY_SIGNATURE_HEADER} (t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">). Another key's webhooks, or a webhook forged by another key, do not verify with it. The same for as long as WEBHOOK_SECRET is.`,
        tags: ["jobs"],
        security: API_KEY,
        response: {
          200: secretSchema.describe("This key's webhook secret.").meta({ examples: [{ secret: "5b0c1f8e3d…", header: KEY_SIGNATURE_HEADER }] }),
          401: commonErrors.unauthorized,
          404: errorResponse(
            "No webhook secret of its own for this key: the server sends no webhooks (WEBHOOK_SECRET unset), or has no API keys (AUTH_MODE=off: every caller would learn the one secret).",
            "webhooks_disabled",
            "this server sends no webhooks (WEBHOOK_SECRET is not set)",
          ),
          429: commonErrors.readLimited,
        },
      },
    },
    async (request, reply) => {
      await limits.takePoll(request.owner);
      // A secret: no cache between here and the key's holder keeps it.
      void reply.header("cache-control", "no-store");
      if (!config.WEBHOOK_SECRET) throw new ApiError(404, "webhooks_disabled", "this server sends no webhooks (WEBHOOK_SECRET is not set)");
      if (config.AUTH_MODE !== "api_key") throw new ApiError(404, "webhooks_disabled", "keys have no webhook secrets of their own without API keys (AUTH_MODE=off): verify X-CodeScout-Signature with WEBHOOK_SECRET");
      return { secret: keyWebhookSecret(config.WEBHOOK_SECRET, request.owner), header: KEY_SIGNATURE_HEADER } as const;
    },
  );
};
