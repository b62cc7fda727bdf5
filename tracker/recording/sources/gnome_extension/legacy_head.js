// GNOME Shell 40–44: the `imports` style.
'use strict';
const {Gio, Meta, Shell} = imports.gi;
const Main = imports.ui.main;
