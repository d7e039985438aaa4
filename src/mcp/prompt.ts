import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";

/**
 * `localize` as an MCP prompt as well as a tool: clients such as Claude Code and VS Code offer
 * prompts as slash commands the user types, so a developer hands an issue to the
 * agent with the way to use the answer attached, instead of writing it into the project's
 * agent instructions. The steps are the ones docs/agents.md gives for those instructions.
 */
export function registerLocalizePrompt(server: McpServer, options: { localPaths: boolean }) {
  const where = options.localPaths ? "in this checkout" : "in the repository (give repo_url and commit, and your uncommitted changes as patch)";
  server.registerPrompt(
    "localize",
    {
      title: "Localize an issue, then read the places it names",
      description: "Find the files, classes and functions an issue needs changed, with the localize tool, before editing.",
      argsSchema: { issue: z.string().min(1).describe("The issue as its reporter wrote it: title, body, traceback, links to lines.") },
    },
    ({ issue }) => ({
      messages: [
        {
          role: "user",
          content: {
            type: "text",
            text: [
              `Before changing any code for the issue below, call the \`localize\` tool with its whole text ${where}.`,
              "Read the locations it returns first: each `path:start-end` is one read.",
              "Where a location's confidence is below 0.5, or its evidence says the model-free ranking does not put its file first, also read the places under \"Also considered\", and search yourself if none of them fits.",
              "Then say which of them the fix belongs in, and why, before editing.",
              "",
              "<issue>",
              issue,
              "</issue>",
            ].join("\n"),
          },
        },
      ],
    }),
  );
}
