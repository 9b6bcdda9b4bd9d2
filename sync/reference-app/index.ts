// The app's entry: the phone's storage and settings, then App. Expo starts
// the component registered as "main".
import { createElement, useEffect, useState } from 'react'
import { AppRegistry } from 'react-native'
import type { Database } from '@nozbe/watermelondb'
import SQLiteAdapter from '@nozbe/watermelondb/adapters/sqlite'
import type { Tokens } from '@fieldcrm/watermelondb'

import App from './App'
import type { AppProps } from './App'
import { openDatabase } from './src/data'

// Set by `EXPO_PUBLIC_FIELDCRM_URL=https://crm.example.com npx expo run:android`.
declare const process: { env: Record<string, string | undefined> }
const baseUrl = process.env.EXPO_PUBLIC_FIELDCRM_URL ?? 'http://localhost:8080'

/**
 * phoneStorage keeps the tokens and the installation's id in the database's
 * local storage, which needs no extra package; a production app keeps the
 * tokens in the keychain (expo-secure-store) instead.
 */
function phoneStorage(database: Database): { tokens: AppProps['tokens']; deviceId: () => Promise<string> } {
  const tokensKey = 'fieldcrm_tokens'
  const deviceIdKey = 'fieldcrm_device_id'
  let installationId: string | null = null
  return {
    tokens: {
      async load(): Promise<Tokens | null> {
        const raw = await database.adapter.getLocal(tokensKey)
        return raw ? (JSON.parse(raw) as Tokens) : null
      },
      save: (t: Tokens) => database.adapter.setLocal(tokensKey, JSON.stringify(t)),
      // Also after a sign-out, which empties the database, its local storage
      // included: the installation keeps its id.
      async clear(): Promise<void> {
        await database.adapter.removeLocal(tokensKey)
        if (installationId) await database.adapter.setLocal(deviceIdKey, installationId)
      },
    },
    async deviceId(): Promise<string> {
      installationId ??= (await database.adapter.getLocal(deviceIdKey)) ?? null
      if (!installationId) {
        installationId = 'rn-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 10)
        await database.adapter.setLocal(deviceIdKey, installationId)
      }
      return installationId
    },
  }
}

const database = openDatabase((schema, migrations) => new SQLiteAdapter({ schema, migrations, jsi: true, dbName: 'fieldcrm' }))
const storage = phoneStorage(database)

// Root waits for the installation's id before App.
function Root() {
  const [id, setId] = useState<string | null>(null)
  useEffect(() => {
    void storage.deviceId().then(setId)
  }, [])
  return id ? createElement(App, { baseUrl, database, deviceId: id, tokens: storage.tokens }) : null
}

AppRegistry.registerComponent('main', () => Root)
