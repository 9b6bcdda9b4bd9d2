// The app's entry: the phone's storage and settings, then App. Expo starts
// the component registered as "main".
import { createElement, useEffect, useState } from 'react'
import { AppRegistry } from 'react-native'
import SQLiteAdapter from '@nozbe/watermelondb/adapters/sqlite'
import type { Tokens } from '@fieldcrm/watermelondb'

import App from './App'
import { openDatabase } from './src/data'

// Set by `EXPO_PUBLIC_FIELDCRM_URL=https://crm.example.com npx expo start`.
declare const process: { env: Record<string, string | undefined> }
const baseUrl = process.env.EXPO_PUBLIC_FIELDCRM_URL ?? 'http://localhost:8080'

const database = openDatabase((schema, migrations) => new SQLiteAdapter({ schema, migrations, jsi: true, dbName: 'fieldcrm' }))

// The tokens and the device id live in the database's local storage, which
// needs no extra package; a production app keeps the tokens in the
// keychain (expo-secure-store) instead.
const tokensKey = 'fieldcrm_tokens'
const tokens = {
  async load(): Promise<Tokens | null> {
    const raw = await database.adapter.getLocal(tokensKey)
    return raw ? (JSON.parse(raw) as Tokens) : null
  },
  save: (t: Tokens) => database.adapter.setLocal(tokensKey, JSON.stringify(t)),
  clear: () => database.adapter.removeLocal(tokensKey),
}

async function deviceId(): Promise<string> {
  const kept = await database.adapter.getLocal('fieldcrm_device_id')
  if (kept) return kept
  const fresh = 'rn-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 10)
  await database.adapter.setLocal('fieldcrm_device_id', fresh)
  return fresh
}

// Root waits for the installation's id (kept in the database) before App.
function Root() {
  const [id, setId] = useState<string | null>(null)
  useEffect(() => {
    void deviceId().then(setId)
  }, [])
  return id ? createElement(App, { baseUrl, database, deviceId: id, tokens }) : null
}

AppRegistry.registerComponent('main', () => Root)
