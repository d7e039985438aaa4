import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";

/** How to use the tool and its answer, as the prompt and the server's instructions both say it. */
function steps(options: { localPaths: boolean }, issue: string): string[] {
  const where = options.localPaths ? "in this checkout" : "in the repository (give repo_url and commit, and your uncommitted changes as patch)";
  return [
    `Before changing any code for ${issue}, call the \`localize\` tool with its whole text ${where}.`,
    "Read the locations it returns first: each `path:start-end` is one read.",
    "Where a location's confidence is below 0.5, or its evidence says the model-free ranking does not put its file first, also read the places under \"Also considered\", and search yourself if none of them fits.",
    "Then say which of them the fix belongs in, and why, before editing.",
  ];
}

/**
 * The server's instructions (the initialize result's `instructions`), which clients such as
 * Claude Code give the calling model beside the tool's description: when to call it, and how
 * to read what it answers.
 */
export function serverInstructions(options: { localPaths: boolean }): string {
  return [
    "CodeScout finds where in a repository an issue needs changes (files, classes, functions, with line ranges), in seconds without a GPU to a few minutes with its model; progress is reported while it runs.",
    ...steps(options, "an issue"),
  ].join("\n");
}

/**
 * `localize` as an MCP prompt as well as a tool: clients such as Claude Code and VS Code offer
 * prompts as slash commands the user types, so a developer hands an issue to the
 * agent with the way to use the answer attached, instead of writing it into the project's
 * agent instructions. The steps are the ones docs/agents.md gives for those instructions.
 */
export function registerLocalizePrompt(server: McpServer, options: { localPaths: boolean }) {
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
              ...steps(options, "the issue below"),
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
