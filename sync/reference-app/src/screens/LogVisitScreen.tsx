import { useEffect, useState } from 'react'
import { Text, TextInput, View } from 'react-native'
import type { Database } from '@nozbe/watermelondb'

import { logVisit } from '../data'
import type { CheckIn } from '../data'
import { Button, Link } from './Button'
import { styles } from './styles'

export interface LogVisitScreenProps {
  database: Database
  customerId: string
  /** Where the phone is (e.g. expo-location's getCurrentPositionAsync); without it the rep types the position. */
  locate?: () => Promise<CheckIn>
  onDone: () => void
  onCancel: () => void
}

/** LogVisitScreen records a visit with a check-in, on the device; the next sync pushes it. */
export function LogVisitScreen({ database, customerId, locate, onDone, onCancel }: LogVisitScreenProps) {
  const [content, setContent] = useState('')
  const [outcome, setOutcome] = useState('')
  const [lat, setLat] = useState('')
  const [lng, setLng] = useState('')
  const [accuracy, setAccuracy] = useState('')
  const [nextTitle, setNextTitle] = useState('')
  const [nextDays, setNextDays] = useState('1')
  const [error, setError] = useState<string | null>(null)

  useEffect(() => {
    if (!locate) return
    locate().then(
      (here) => {
        setLat(String(here.lat))
        setLng(String(here.lng))
        setAccuracy(String(here.accuracy))
      },
      (err: unknown) => setError(`No position: ${err instanceof Error ? err.message : String(err)}`),
    )
  }, [locate])

  const save = async () => {
    const checkIn = { lat: Number(lat), lng: Number(lng), accuracy: Number(accuracy) }
    if (lat === '' || lng === '' || Object.values(checkIn).some(Number.isNaN)) {
      setError('The check-in needs a latitude, a longitude and an accuracy in metres.')
      return
    }
    const days = Number(nextDays)
    if (nextTitle.trim() !== '' && !(days > 0)) {
      setError('The next step needs a number of days from now.')
      return
    }
    const nextStep = nextTitle.trim() === '' ? undefined : { title: nextTitle.trim(), dueAt: new Date(Date.now() + days * 86400e3) }
    await logVisit(database, { customerId, content, outcome, checkIn, nextStep })
    onDone()
  }

  return (
    <View style={styles.screen}>
      <Link title="‹ Cancel" onPress={onCancel} />
      <Text style={styles.title}>Log a visit</Text>
      <Text style={styles.label}>What happened</Text>
      <TextInput style={styles.input} multiline value={content} onChangeText={setContent} />
      <Text style={styles.label}>Outcome</Text>
      <TextInput style={styles.input} value={outcome} onChangeText={setOutcome} />
      <Text style={styles.label}>Check-in: latitude, longitude, accuracy (m)</Text>
      <View style={styles.toolbar}>
        <TextInput style={[styles.input, { flex: 1 }]} keyboardType="numeric" value={lat} onChangeText={setLat} placeholder="lat" />
        <TextInput style={[styles.input, { flex: 1 }]} keyboardType="numeric" value={lng} onChangeText={setLng} placeholder="lng" />
        <TextInput style={[styles.input, { flex: 1 }]} keyboardType="numeric" value={accuracy} onChangeText={setAccuracy} placeholder="m" />
      </View>
      <Text style={styles.label}>Next step (optional): what, and in how many days</Text>
      <View style={styles.toolbar}>
        <TextInput style={[styles.input, { flex: 3 }]} value={nextTitle} onChangeText={setNextTitle} placeholder="e.g. send the quote" />
        <TextInput style={[styles.input, { flex: 1 }]} keyboardType="numeric" value={nextDays} onChangeText={setNextDays} placeholder="days" />
      </View>
      {error && <Text style={styles.error}>{error}</Text>}
      <Button title="Save visit" onPress={save} disabled={content.trim() === ''} />
    </View>
  )
}
