#!/usr/bin/env node
// fieldcrm-watermelondb: the package's command line.
//
//   fieldcrm-watermelondb models --server URL --out DIR [--version N]
//
// writes a WatermelonDB app's data layer (schema.ts, migrations.ts, types.ts,
// models.ts) as the server at URL generates it (GET /v1/sync/models): the
// same files as `fieldcrm schema`, fetched from a running server instead of
// a checkout. With --version N, that version's into DIR; without, every
// version's, each into DIR/v<N>. It signs in with FIELDCRM_TOKEN (an access
// token) or with FIELDCRM_EMAIL and FIELDCRM_PASSWORD, as the device
// "fieldcrm-watermelondb-cli", and signs out when done.
//
// Exit status: 0 done, 1 the server refused or could not be reached, 2 a
// usage mistake.
'use strict'

const fs = require('node:fs')
const path = require('node:path')
const { Api, FieldcrmProblemError, signIn } = require('../dist/index.js')

const usage = 'usage: fieldcrm-watermelondb models --server URL --out DIR [--version N]'

class UsageError extends Error {}

/** parseArgs reads `models --server URL --out DIR [--version N]`. */
function parseArgs(argv) {
  const [command, ...rest] = argv
  if (command !== 'models') throw new UsageError(command ? `unknown command ${JSON.stringify(command)}` : 'a command is required')
  const opts = { server: '', out: '', version: 0 }
  for (let i = 0; i < rest.length; i += 2) {
    const [flag, value] = [rest[i], rest[i + 1]]
    if (value === undefined) throw new UsageError(`${flag} needs a value`)
    switch (flag) {
      case '--server': opts.server = value.replace(/\/+$/, ''); break
      case '--out': opts.out = value; break
      case '--version':
        opts.version = Number(value)
        if (!Number.isInteger(opts.version) || opts.version < 1) throw new UsageError('--version must be a whole number from 1')
        break
      default: throw new UsageError(`unknown flag ${flag}`)
    }
  }
  if (!/^https?:\/\//.test(opts.server)) throw new UsageError('--server URL (http or https) is required')
  if (!opts.out) throw new UsageError('--out DIR is required')
  return opts
}

/**
 * signedIn is an Api signed in from the environment; end() signs out the
 * session it began (none when given a token).
 */
async function signedIn(server, env) {
  let token = env.FIELDCRM_TOKEN
  const began = !token
  if (began) {
    if (!env.FIELDCRM_EMAIL || !env.FIELDCRM_PASSWORD) {
      throw new UsageError('set FIELDCRM_TOKEN, or FIELDCRM_EMAIL and FIELDCRM_PASSWORD, to sign in to the server')
    }
    token = (await signIn(server, { email: env.FIELDCRM_EMAIL, password: env.FIELDCRM_PASSWORD, deviceId: 'fieldcrm-watermelondb-cli' })).access_token
  }
  const api = new Api(server, {
    getAccessToken: () => token,
    // A run takes seconds: an access token that expires meanwhile is not worth a refresh.
    refresh: () => Promise.reject(new Error('the access token expired; run again')),
    onSignedOut: () => {},
  }, fetch)
  return { api, end: async () => { if (began) await api.request('POST', '/v1/auth/logout') } }
}

/**
 * write puts one version's files into dir and says so. The names come from
 * the server: only plain file names are written, so that an answer naming
 * "../x" cannot write outside dir.
 */
function write(dir, models, out) {
  const names = Object.keys(models.files ?? {}).sort()
  const bad = names.find((n) => !/^[A-Za-z0-9_-]+\.ts$/.test(n))
  if (names.length === 0 || bad !== undefined) {
    throw new Error(`the server's answer names ${bad === undefined ? 'no file' : JSON.stringify(bad)}: not a generated data layer`)
  }
  fs.mkdirSync(dir, { recursive: true })
  for (const name of names) {
    const file = path.join(dir, name)
    fs.writeFileSync(file, models.files[name])
    out.write(`wrote ${file} (schema version ${models.schema_version})\n`)
  }
}

async function main(argv, env, out) {
  const opts = parseArgs(argv)
  const { api, end } = await signedIn(opts.server, env)
  try {
    const fetchVersion = (v) => api.json('GET', '/v1/sync/models' + (v ? `?version=${v}` : ''))
    if (opts.version) {
      write(opts.out, await fetchVersion(opts.version), out)
      return
    }
    const current = await fetchVersion(0)
    for (let v = 1; v < current.schema_version; v++) write(path.join(opts.out, `v${v}`), await fetchVersion(v), out)
    write(path.join(opts.out, `v${current.schema_version}`), current, out)
  } finally {
    await end()
  }
}

main(process.argv.slice(2), process.env, process.stdout).then(
  () => process.exit(0),
  (err) => {
    if (err instanceof UsageError) {
      console.error(`fieldcrm-watermelondb: ${err.message}\n${usage}`)
      process.exit(2)
    }
    const lines = [err && err.message ? err.message : String(err)]
    if (err instanceof FieldcrmProblemError) for (const f of err.errors) lines.push(`  ${f.field}: ${f.message}`)
    console.error(`fieldcrm-watermelondb: ${lines.join('\n')}`)
    process.exit(1)
  },
)
