// TypeScript types for the mini-program's documents: `npm run codegen`.
// CODEGEN_OUTPUT redirects the output (the test suite compares a fresh run with the
// committed file, so the types cannot fall behind the schema or the documents).
import type { CodegenConfig } from "@graphql-codegen/cli";

const output = process.env.CODEGEN_OUTPUT ?? "miniprogram/generated/graphql.ts";

const config: CodegenConfig = {
  schema: "../schema.graphql",
  documents: ["miniprogram/*.graphql"],
  ignoreNoDocuments: false,
  generates: {
    [output]: {
      plugins: ["typescript", "typescript-operations"],
      config: {
        onlyOperationTypes: true,
        enumsAsTypes: true,
        useTypeImports: true,
        skipTypename: true,
        avoidOptionals: { field: true, inputValue: false, object: true },
        scalars: { DateTime: "string", Date: "string" },
      },
    },
  },
};

export default config;
