/** The app's one store, bound to same-origin REST (the coordinator serves dashboard, REST and Socket.IO together). */
import { useStore } from 'zustand';
import { createApi } from './api';
import { createDashboardStore, type DashboardState } from './store';

/** Empty: same origin. VITE_FEDCARE_SERVER points a dev build at another coordinator. */
export const SERVER = (import.meta.env.VITE_FEDCARE_SERVER as string | undefined) ?? '';

export const store = createDashboardStore((token) => createApi(token, { baseUrl: SERVER }));

export function useDash<T>(selector: (s: DashboardState) => T): T {
  return useStore(store, selector);
}
