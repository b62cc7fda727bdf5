// The part both flavours share (tracker.recording.sources.gnome_extension joins it to legacy.js or esm.js):
// one read-only D-Bus object that tells tracker the focused window, idle time and lock state. It offers no
// way to move, close or activate windows.
const INTERFACE_XML = `
<node>
  <interface name="org.gnome.Shell.Extensions.TrackerFocus">
    <method name="Get">
      <arg type="s" direction="out" name="app_id"/>
      <arg type="s" direction="out" name="wm_class"/>
      <arg type="s" direction="out" name="title"/>
      <arg type="t" direction="out" name="idle_ms"/>
      <arg type="b" direction="out" name="locked"/>
    </method>
  </interface>
</node>`;
const OBJECT_PATH = '/org/gnome/Shell/Extensions/TrackerFocus';

class TrackerFocusService {
    constructor() {
        this._tracker = Shell.WindowTracker.get_default();
        // Mutter 41 and later keep the idle monitor on the backend; GNOME 40 has only Meta.IdleMonitor.get_core.
        if (global.backend && global.backend.get_core_idle_monitor)
            this._idleMonitor = global.backend.get_core_idle_monitor();
        else
            this._idleMonitor = Meta.IdleMonitor.get_core ? Meta.IdleMonitor.get_core() : null;
        this._object = Gio.DBusExportedObject.wrapJSObject(INTERFACE_XML, this);
        this._object.export(Gio.DBus.session, OBJECT_PATH);
    }

    Get() {
        const window = global.display.focus_window;
        let appId = '', wmClass = '', title = '';
        if (window) {
            const app = this._tracker.get_window_app(window);
            // Windows without a .desktop file get made-up ids ("window:12"): those name nothing.
            const id = app ? app.get_id() || '' : '';
            appId = id.startsWith('window:') ? '' : id.replace(/\.desktop$/, '');
            wmClass = window.get_wm_class() || '';
            title = window.get_title() || '';
        }
        const idleMs = this._idleMonitor ? this._idleMonitor.get_idletime() : 0;
        const locked = Boolean(Main.screenShield && Main.screenShield.locked);
        return [appId, wmClass, title, idleMs, locked];
    }

    destroy() {
        this._object.unexport();
        this._object = null;
    }
}
