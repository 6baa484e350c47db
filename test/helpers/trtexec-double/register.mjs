// Loads tsx from the repository's node_modules, wherever the double is started from (its cwd is the caller's).
import '../../../node_modules/tsx/dist/loader.mjs'
