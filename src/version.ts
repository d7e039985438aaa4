/** The service's version, shown in the OpenAPI document and the MCP server's identity. */
export const API_VERSION = "0.4.0";
