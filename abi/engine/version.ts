/** The engine package's version (package.json `version`; a test keeps them equal). */
export const ENGINE_VERSION = '0.1.0';
