// Imported first by main.tsx, so that it runs before any other module of the app.
import { withoutEval } from '@fedcare/shared/util';

withoutEval();
