
class Extension {
    enable() {
        this._service = new TrackerFocusService();
    }

    disable() {
        this._service.destroy();
        this._service = null;
    }
}

function init() {
    return new Extension();
}
