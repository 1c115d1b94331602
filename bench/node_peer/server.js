// A Node yardstick for issue 27 ("As fast as Node"): the service's four
// benchmark routes, written the way a plain Fastify app would write them,
// over the same database and the same tokens. It has none of the service's
// limits, metrics, logs or session checks on purpose: it measures what the
// stack costs, not what our features cost. Not for production.

// ESM, because postgres.js 4 ships as an ES module only.
import Fastify from 'fastify'
import postgres from 'postgres'
import { createVerifier } from 'fast-jwt'

const DATABASE_URL = process.env.DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/todo'
const PORT = Number(process.env.PORT || 8001)
// The service reads its HS256 key from BETTER_AUTH_SECRET; AUTH_SECRET is
// taken too, so either name works, and the two sides must share the value.
const AUTH_SECRET = process.env.BETTER_AUTH_SECRET || process.env.AUTH_SECRET
const JWT_ISSUER = process.env.JWT_ISSUER || 'todo-api'
const DB_POOL_MAX = Number(process.env.DB_POOL_MAX || 20)

if (!AUTH_SECRET) {
  console.error('BETTER_AUTH_SECRET (or AUTH_SECRET) is required: the key the Python service signs with')
  process.exit(2)
}

// postgres.js prepares every tagged-template query by default (prepare: true),
// as asyncpg does in the service, so both sides pay for planning once.
const sql = postgres(DATABASE_URL, { max: DB_POOL_MAX })

// One verifier built once: fast-jwt caches verified tokens, as the service
// does, so a benchmark's repeated token costs a lookup, not an HMAC.
const verify = createVerifier({
  key: AUTH_SECRET,
  algorithms: ['HS256'],
  allowedIss: JWT_ISSUER,
  requiredClaims: ['sub', 'iat', 'exp', 'iss', 'jti'],
  cache: true
})

// A malformed id would make Postgres raise 22P02; answer 404 as for a missing row.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

// logger off: the peer should not pay for logs the service is not asked to write here.
const app = Fastify({ logger: false })

const unauthorized = (reply) => reply.code(401).send({ title: 'Unauthorized' })
const notFound = (reply) => reply.code(404).send({ title: 'Not Found' })

// Every route is protected: the caller's id comes from the token's `sub`.
app.addHook('onRequest', async (request, reply) => {
  const header = request.headers.authorization
  if (!header || !header.startsWith('Bearer ')) return unauthorized(reply)
  try {
    const claims = verify(header.slice(7))
    if (!UUID.test(claims.sub)) return unauthorized(reply)
    request.userId = claims.sub
  } catch {
    return unauthorized(reply)
  }
})

app.get('/api/tasks/:id', async (request, reply) => {
  const { id } = request.params
  if (!UUID.test(id)) return notFound(reply)
  const [row] = await sql`SELECT * FROM tasks WHERE id = ${id} AND user_id = ${request.userId}`
  return row || notFound(reply)
})

app.get('/api/tasks', async (request, reply) => {
  const limit = Number(request.query.limit ?? 20)
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    return reply.code(400).send({ title: 'Bad Request' })
  }
  return sql`
    SELECT * FROM tasks WHERE user_id = ${request.userId}
    ORDER BY created_at DESC, id DESC LIMIT ${limit}`
})

// Fastify checks bodies against a compiled JSON schema: the usual Node way, and cheap.
const createBody = {
  type: 'object',
  required: ['title'],
  properties: {
    title: { type: 'string', minLength: 1, maxLength: 200 },
    description: { type: ['string', 'null'], maxLength: 2000 }
  }
}

app.post('/api/tasks', { schema: { body: createBody } }, async (request, reply) => {
  const { title, description = null } = request.body
  const [row] = await sql`
    INSERT INTO tasks (user_id, title, description)
    VALUES (${request.userId}, ${title}, ${description})
    RETURNING *`
  return reply.code(201).send(row)
})

const patchBody = {
  type: 'object',
  required: ['completed'],
  properties: { completed: { type: 'boolean' } }
}

// completed_at follows sql/queries/tasks/set_task_completed.sql, since
// tasks_completed_at_check wants it NULL unless completed: set when a task
// becomes completed, kept when it already was, cleared when reopened. The
// tasks_stamp_update trigger bumps version and updated_at itself.
app.patch('/api/tasks/:id', { schema: { body: patchBody } }, async (request, reply) => {
  const { id } = request.params
  if (!UUID.test(id)) return notFound(reply)
  const { completed } = request.body
  const [row] = await sql`
    UPDATE tasks
    SET completed = ${completed},
        completed_at = CASE
          WHEN NOT ${completed}::boolean THEN NULL
          WHEN completed THEN completed_at
          ELSE now()
        END,
        updated_at = now()
    WHERE id = ${id} AND user_id = ${request.userId}
    RETURNING *`
  return row || notFound(reply)
})

// Close the pool on the signals a benchmark harness sends, so runs end cleanly.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    await app.close()
    await sql.end({ timeout: 5 })
    process.exit(0)
  })
}

app.listen({ port: PORT, host: '127.0.0.1' }).then((address) => {
  console.log(`node peer listening on ${address}`)
}).catch((err) => {
  console.error(err)
  process.exit(1)
})
