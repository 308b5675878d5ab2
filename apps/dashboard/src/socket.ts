/**
 * The live link: a Socket.IO client on the coordinator's dashboard namespace, the token in the
 * handshake's `auth`, every `dash:*` event handed to the store. No polling: the server pushes.
 */
import { io, type Socket } from 'socket.io-client';
import { DASHBOARD_NAMESPACE, type DashboardClientToServer, type DashboardServerToClient } from '@fedcare/shared/protocol';
import type { DashboardStore } from './store';

export type DashboardSocket = Socket<DashboardServerToClient, DashboardClientToServer>;

/** Connects and wires events into the store; returns a function that disconnects. */
export function connectDashboard(store: DashboardStore, token: string, baseUrl = ''): () => void {
  const s = store.getState();
  const socket: DashboardSocket = io(`${baseUrl}${DASHBOARD_NAMESPACE}`, { auth: { token }, transports: ['websocket', 'polling'] });
  socket.on('connect', () => s.setConnection('connected'));
  socket.on('disconnect', (reason) => s.setConnection('disconnected', reason === 'io client disconnect' ? undefined : reason));
  socket.on('connect_error', (err) => s.setConnection('error', err.message));
  socket.on('dash:status', (m) => store.getState().onStatus(m));
  socket.on('dash:stage', (m) => store.getState().onStage(m));
  socket.on('dash:round', (m) => store.getState().onRound(m));
  socket.on('dash:clients', (m) => store.getState().onClients(m));
  socket.on('dash:run', (m) => store.getState().onRun(m));
  return () => {
    socket.removeAllListeners();
    socket.disconnect();
  };
}
