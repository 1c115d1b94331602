// A real Better Auth server with its JWT plugin, as a Next.js frontend runs
// it, for the todo-api tests: tests/auth/conftest.py starts one per
// algorithm on a free port and signs people up through its own routes.
//
//   PORT=3001 DATABASE_URL=postgresql://... BETTER_AUTH_SECRET=... \
//     [JWT_ALG=ES256] node server.mjs
//
// It creates its tables in DATABASE_URL, then prints "ready" and serves
// /api/auth/* (sign-up/email, token, jwks, ...) until SIGTERM.
import http from "node:http";
import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { toNodeHandler } from "better-auth/node";
import { jwt } from "better-auth/plugins";
import pg from "pg";

const port = Number(process.env.PORT);
const alg = process.env.JWT_ALG;
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 4 });

const auth = betterAuth({
  baseURL: `http://127.0.0.1:${port}`,
  secret: process.env.BETTER_AUTH_SECRET,
  database: pool,
  emailAndPassword: { enabled: true },
  // The plugin's defaults (EdDSA, Ed25519, 15 minutes) unless JWT_ALG says.
  plugins: [jwt(alg ? { jwks: { keyPairConfig: { alg } } } : {})],
  telemetry: { enabled: false },
});

const { runMigrations } = await getMigrations(auth.options);
await runMigrations();

const server = http.createServer(toNodeHandler(auth));
server.listen(port, "127.0.0.1", () => console.log("ready"));
process.on("SIGTERM", () => server.close(() => pool.end().then(() => process.exit(0))));
