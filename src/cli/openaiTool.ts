import { writeFileSync } from "node:fs";
import { openAiToolDefinition } from "../mcp/tool.js";

/** Writes docs/openai-tool.json: the MCP tool as an OpenAI function definition (a test keeps it fresh). */
export const renderOpenAiTool = () => `${JSON.stringify(openAiToolDefinition(), null, 2)}\n`;

if (process.argv[1]?.endsWith("openaiTool.ts")) {
  writeFileSync("docs/openai-tool.json", renderOpenAiTool());
  process.stdout.write("wrote docs/openai-tool.json\n");
}
