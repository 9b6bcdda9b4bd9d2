import { StyleSheet } from 'react-native'

/** The few styles every screen shares. */
export const styles = StyleSheet.create({
  screen: { flex: 1, padding: 16, backgroundColor: '#fff' },
  title: { fontSize: 22, fontWeight: '600', marginBottom: 12 },
  label: { fontSize: 13, color: '#555', marginTop: 8 },
  input: { borderWidth: 1, borderColor: '#ccc', borderRadius: 6, padding: 10, marginVertical: 4 },
  row: { paddingVertical: 10, borderBottomWidth: StyleSheet.hairlineWidth, borderBottomColor: '#ddd' },
  rowTitle: { fontSize: 16 },
  rowDetail: { fontSize: 13, color: '#666' },
  button: { backgroundColor: '#1f6feb', borderRadius: 6, padding: 12, marginVertical: 6, alignItems: 'center' },
  buttonText: { color: '#fff', fontWeight: '600' },
  link: { color: '#1f6feb', paddingVertical: 8 },
  error: { color: '#b00020', marginVertical: 6 },
  toolbar: { flexDirection: 'row', justifyContent: 'space-between', alignItems: 'center' },
})
