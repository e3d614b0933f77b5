import { defineContract } from './contract.js';

defineContract('gateway');
