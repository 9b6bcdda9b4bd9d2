import type { Database } from '@nozbe/watermelondb'
import { createSync, signIn, tokenCredentials, Tokens } from '@fieldcrm/watermelondb'

// What the app already has: its screens and a place to keep the tokens.
export interface App {
  saveTokens(tokens: Tokens): Promise<void>
  showSignIn(): void
  setProgress(fraction: number): void
  showRejected(table: string, id: string, reason: string): void
}

export async function startSync(app: App, database: Database, baseUrl: string, email: string, password: string, deviceId: string) {
  const tokens = await signIn(baseUrl, { email, password, deviceId })
  await app.saveTokens(tokens)
  const client = createSync({
    baseUrl,
    database,
    deviceId,
    credentials: tokenCredentials({ baseUrl, tokens, onTokens: app.saveTokens, onSignedOut: app.showSignIn }),
    onProgress: ({ done, expected }) => app.setProgress(done / Math.max(expected, 1)),
    onRejected: app.showRejected,
  })
  await client.sync() // first sync: every page, with progress
  return client // then: client.sync() on app start, on a timer, after each edit
}
