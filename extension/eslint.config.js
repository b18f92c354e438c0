import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["node_modules/", "dist/"] },
  js.configs.recommended,
  {
    files: ["**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: { ...globals.browser, ...globals.webextensions },
    },
    rules: {
      "no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      "no-restricted-properties": [
        "error",
        { property: "innerHTML", message: "Build DOM nodes and set textContent." },
        { property: "outerHTML", message: "Build DOM nodes and set textContent." },
      ],
      "no-restricted-syntax": ["error", { selector: "CallExpression[callee.property.name='insertAdjacentHTML']", message: "Build DOM nodes." }],
      eqeqeq: ["error", "always", { null: "ignore" }],
    },
  },
  { files: ["content.js"], languageOptions: { sourceType: "script" } },
  { files: ["test/**/*.js", "scripts/**/*.mjs", "eslint.config.js"], languageOptions: { globals: { ...globals.node } } },
];
